/**
 * Exports: the evidence bundles this user asked the NVR for (src/nvr/exports.ts), with their state, and the
 * download of a finished one — fetched with the access token, checked against the SHA-256 the job names before it
 * is offered as a file, so a bundle damaged on the way is never saved as if it were the evidence.
 */
import { useEffect, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import type { Api } from '../api.js';

export interface ExportJob {
  readonly id: string;
  readonly camera: string;
  readonly from: string;
  readonly to: string;
  readonly case: string;
  readonly reason: string;
  readonly requestedAt: string;
  readonly state: string;
  readonly bytes?: number;
  readonly sha256?: string;
  readonly error?: string;
}

const hex = (b: ArrayBuffer): string => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');

async function download(api: Api, job: ExportJob): Promise<void> {
  const r = await api.nvr(`/v1/exports/${encodeURIComponent(job.id)}/bundle.tar`);
  if (!r.ok) throw new Error(r.status === 403 ? 'Your export grant no longer covers this range.' : `The download failed (${r.status}).`);
  const bytes = await r.arrayBuffer();
  const sum = hex(await crypto.subtle.digest('SHA-256', bytes));
  if (sum !== job.sha256) throw new Error(`The downloaded bundle's SHA-256 (${sum}) is not the export's (${job.sha256 ?? '?'}): not saved.`);
  const name = /filename="([^"]+)"/.exec(r.headers.get('content-disposition') ?? '')?.[1] ?? `${job.camera}-${job.id}.tar`;
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/x-tar' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export function ExportList(p: { readonly api: Api; readonly camera?: string; readonly refresh?: number }): JSX.Element {
  const [jobs, setJobs] = useState<ExportJob[] | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    p.api
      .get<{ exports: ExportJob[] }>('/v1/exports')
      .then((r) => setJobs(r.exports.filter((j) => p.camera === undefined || j.camera === p.camera)))
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [p.api, p.camera, p.refresh, tick]);
  const busy = jobs?.some((j) => j.state === 'queued' || j.state === 'running') === true;
  useEffect(() => {
    if (!busy) return undefined;
    const t = window.setTimeout(() => setTick(tick + 1), 1000);
    return () => window.clearTimeout(t);
  }, [busy, tick]);
  if (jobs === undefined) return <p class="muted">{error ?? 'Loading exports…'}</p>;
  if (jobs.length === 0) return <p class="muted">No exports yet.</p>;
  return (
    <div class="exports">
      <table>
        <caption>Exports</caption>
        <thead>
          <tr>
            <th scope="col">Camera</th>
            <th scope="col">Range</th>
            <th scope="col">Case</th>
            <th scope="col">State</th>
            <th scope="col">Bundle</th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((j) => (
            <tr key={j.id} data-export={j.id} data-state={j.state}>
              <td>{j.camera}</td>
              <td>
                {new Date(j.from).toLocaleString()} – {new Date(j.to).toLocaleTimeString()}
              </td>
              <td>{j.case}</td>
              <td>{j.state === 'failed' ? `failed: ${j.error ?? '?'}` : j.state}</td>
              <td>
                {j.state === 'done' ? (
                  <button type="button" onClick={() => void download(p.api, j).catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)))}>
                    Download ({((j.bytes ?? 0) / 1e6).toFixed(1)} MB)
                  </button>
                ) : (
                  '—'
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {error !== undefined && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
    </div>
  );
}

export function ExportsPage(p: { readonly api: Api }): JSX.Element {
  return (
    <main class="exports-page">
      <h1>Exports</h1>
      <p class="muted">Evidence bundles are signed by the NVR's exporter identity; check one offline with keyframe verify.</p>
      <ExportList api={p.api} />
    </main>
  );
}
