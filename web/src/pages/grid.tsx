/** The live grid: 1, 4, 9 or 16 tiles of the cameras the viewer's grants name, in pages when there are more. */
import { useEffect, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import type { Api } from '../api.js';
import { LiveTile } from '../live-tile.js';

export interface CameraInfo {
  readonly serial: string;
  readonly latestRecorded: string | null;
  readonly uploadLagMs: number | null;
  readonly behindMs: number | null;
  readonly verification: { readonly verified: number; readonly unverified: number; readonly quarantined: number };
  readonly lockedRanges: number;
}

const LAYOUTS = [1, 4, 9, 16] as const;

export function GridPage(p: { readonly api: Api; readonly go: (hash: string) => void }): JSX.Element {
  const [cameras, setCameras] = useState<CameraInfo[] | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [layout, setLayout] = useState<number>(() => Number(localStorage.getItem('kf-layout') ?? 4) || 4);
  const [page, setPage] = useState(0);
  useEffect(() => {
    p.api
      .get<{ cameras: CameraInfo[] }>('/v1/cameras')
      .then((r) => setCameras(r.cameras))
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [p.api]);
  const live = (cameras ?? []).filter((c) => p.api.can(c.serial, 'live'));
  const pages = Math.max(1, Math.ceil(live.length / layout));
  const shown = live.slice(page * layout, page * layout + layout);
  const choose = (n: number): void => {
    setLayout(n);
    setPage(0);
    localStorage.setItem('kf-layout', String(n));
  };
  return (
    <main class="grid-page">
      <div class="toolbar" role="toolbar" aria-label="grid layout">
        {LAYOUTS.map((n) => (
          <button key={n} type="button" aria-pressed={layout === n} onClick={() => choose(n)}>
            {n === 1 ? '1 tile' : `${n} tiles`}
          </button>
        ))}
        {pages > 1 && (
          <span class="pager">
            <button type="button" disabled={page === 0} onClick={() => setPage(page - 1)}>
              ‹ previous
            </button>
            page {page + 1} of {pages}
            <button type="button" disabled={page + 1 >= pages} onClick={() => setPage(page + 1)}>
              next ›
            </button>
          </span>
        )}
      </div>
      {error !== undefined && <p role="alert" class="error">{error}</p>}
      {cameras !== undefined && live.length === 0 && <p class="notice">No camera to show live: your grants give no live right. Recorded video, where your grants allow it, is on each camera's page.</p>}
      {cameras !== undefined && cameras.length > live.length && (
        <ul class="other-cameras">
          {cameras
            .filter((c) => !live.includes(c))
            .map((c) => (
              <li key={c.serial}>
                <a href={`#/camera/${encodeURIComponent(c.serial)}`}>{c.serial}</a> (recorded video only)
              </li>
            ))}
        </ul>
      )}
      <div class={`grid grid-${layout}`}>
        {shown.map((c) => (
          <LiveTile key={c.serial} api={p.api} serial={c.serial} onOpen={() => p.go(`#/camera/${encodeURIComponent(c.serial)}`)} />
        ))}
      </div>
    </main>
  );
}
