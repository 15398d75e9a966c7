/**
 * A camera's timeline over a window: the NVR's ranges (src/nvr/timeline.ts: verified, unverified, quarantined,
 * on the camera but not uploaded, lost, expired, missing) as coloured bands, evidence locks as a band beneath, the
 * playhead, and the selection (for lock and export). Click or Enter plays from a time; arrow keys move the cursor
 * (Shift: by a minute), Home/End jump to the window's ends.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { JSX } from 'preact';

export type TimelineState = 'verified' | 'unverified' | 'quarantined' | 'on-camera' | 'lost' | 'expired' | 'missing';

export interface TimelineData {
  readonly from: string;
  readonly to: string;
  readonly ranges: readonly { readonly state: TimelineState; readonly from: string; readonly to: string }[];
  readonly locks: readonly { readonly case: string; readonly from: string; readonly to: string }[];
}

export const STATE_LABELS: Readonly<Record<TimelineState, string>> = {
  verified: 'recorded, verified',
  unverified: 'recorded, not yet verified',
  quarantined: 'quarantined (failed verification)',
  'on-camera': 'on the camera, not uploaded yet',
  lost: 'lost on the camera',
  expired: 'expired (retention)',
  missing: 'missing',
};

export interface TimelineProps {
  readonly data: TimelineData | undefined;
  readonly from: number;
  readonly to: number;
  /** Wall-clock time being played, ms. */
  readonly playhead?: number | undefined;
  readonly selection?: { readonly from: number; readonly to: number } | undefined;
  /** Ranges the viewer's own check found not verified (ms). */
  readonly unverified?: readonly { readonly from: number; readonly to: number }[];
  readonly onSeek: (ms: number) => void;
}

const time = (ms: number): string => new Date(ms).toLocaleTimeString(undefined, { hour12: false });

export function Timeline(p: TimelineProps): JSX.Element {
  const [cursor, setCursor] = useState<number>(p.playhead ?? p.to - 60_000);
  const bar = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (p.playhead !== undefined) setCursor(p.playhead);
  }, [p.playhead]);
  const span = p.to - p.from;
  const pct = (ms: number): string => `${(Math.min(Math.max(ms - p.from, 0), span) / span) * 100}%`;
  const width = (a: number, b: number): string => `${(Math.max(0, Math.min(b, p.to) - Math.max(a, p.from)) / span) * 100}%`;
  const at = (clientX: number): number => {
    const r = bar.current?.getBoundingClientRect();
    if (r === undefined || r.width === 0) return p.from;
    return Math.round(p.from + ((clientX - r.left) / r.width) * span);
  };
  const onKey = (e: KeyboardEvent): void => {
    const step = e.shiftKey ? 60_000 : 10_000;
    let next: number | undefined;
    if (e.key === 'ArrowLeft') next = cursor - step;
    else if (e.key === 'ArrowRight') next = cursor + step;
    else if (e.key === 'Home') next = p.from;
    else if (e.key === 'End') next = p.to - 1000;
    else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      p.onSeek(cursor);
      return;
    }
    if (next === undefined) return;
    e.preventDefault();
    setCursor(Math.min(Math.max(next, p.from), p.to));
  };
  const ticks: number[] = [];
  const tick = [60_000, 300_000, 600_000, 1_800_000, 3_600_000, 6 * 3_600_000].find((t) => span / t <= 8) ?? 86_400_000;
  for (let t = Math.ceil(p.from / tick) * tick; t < p.to; t += tick) ticks.push(t);
  return (
    <div class="timeline">
      <div
        class="timeline-bar"
        ref={bar}
        tabIndex={0}
        role="slider"
        aria-label="timeline: arrow keys move, Enter plays from the cursor"
        aria-valuemin={p.from}
        aria-valuemax={p.to}
        aria-valuenow={cursor}
        aria-valuetext={new Date(cursor).toLocaleString()}
        onKeyDown={onKey}
        onClick={(e) => {
          const t = at(e.clientX);
          setCursor(t);
          p.onSeek(t);
        }}
      >
        {p.data?.ranges.map((r) => {
          const a = Date.parse(r.from);
          const b = Date.parse(r.to);
          return <div key={`${r.from}-${r.state}`} class={`band state-${r.state}`} style={{ left: pct(a), width: width(a, b) }} title={`${STATE_LABELS[r.state]}: ${time(a)}–${time(b)}`} data-state={r.state} />;
        })}
        {p.unverified?.map((r) => <div key={`u${r.from}`} class="band own-unverified" style={{ left: pct(r.from), width: width(r.from, r.to) }} title={`this browser's check failed: ${time(r.from)}–${time(r.to)}`} />)}
        {p.data?.locks.map((l) => {
          const a = Date.parse(l.from);
          const b = Date.parse(l.to);
          return <div key={`l${l.case}${l.from}`} class="lock" style={{ left: pct(a), width: width(a, b) }} title={`locked: case ${l.case}`} />;
        })}
        {p.selection !== undefined && <div class="selection" style={{ left: pct(p.selection.from), width: width(p.selection.from, p.selection.to) }} />}
        <div class="cursor" style={{ left: pct(cursor) }} />
        {p.playhead !== undefined && <div class="playhead" style={{ left: pct(p.playhead) }} />}
      </div>
      <div class="timeline-ticks" aria-hidden="true">
        {ticks.map((t) => (
          <span key={t} style={{ left: pct(t) }}>
            {new Date(t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', hour12: false })}
          </span>
        ))}
      </div>
      <ul class="legend">
        {(Object.keys(STATE_LABELS) as TimelineState[]).map((s) => (
          <li key={s}>
            <i class={`swatch state-${s}`} /> {STATE_LABELS[s]}
          </li>
        ))}
        <li>
          <i class="swatch lock" /> evidence lock
        </li>
      </ul>
    </div>
  );
}
