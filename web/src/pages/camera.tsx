/**
 * A camera's page: live view or recorded playback, the timeline of the chosen window, and — over a selected range
 * — an evidence lock or an export. Playback starts where the timeline is clicked; the range loaded is the window,
 * so scrubbing inside it needs no new manifest, and key rotations inside it are Period changes Shaka plays through.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { JSX } from 'preact';
import type { Api } from '../api.js';
import { LiveTile } from '../live-tile.js';
import { RangePlayer, describeShakaError } from '../playback.js';
import { Timeline } from '../timeline.js';
import type { TimelineData } from '../timeline.js';
import { ExportList } from './exports.js';
import { AuthenticityChecker } from '../authenticity.js';
import type { FragmentCheck, SessionCheck } from '../authenticity.js';

/** `/v1/media/SERIAL/SESSION/NNNNNN.m4s` or `…/init.mp4` → session and seq (-1 for the init segment). */
function mediaName(url: string): { session: string; seq: number } | undefined {
  const m = /\/v1\/media\/[^/]+\/([0-9a-f]{32})\/(?:(\d{6,})\.m4s|(init)\.mp4)$/.exec(new URL(url, location.href).pathname);
  if (m === null) return undefined;
  return { session: m[1] as string, seq: m[3] === 'init' ? -1 : Number(m[2]) };
}

/** What this browser's own check says, over what it has played. */
function Authenticity(p: { readonly checks: readonly FragmentCheck[]; readonly sessions: readonly SessionCheck[] }): JSX.Element {
  const bad = p.checks.filter((c) => !c.ok);
  const good = p.checks.filter((c) => c.ok && c.seq >= 0).length;
  const state = bad.length > 0 ? 'failed' : good > 0 ? 'verified' : 'checking';
  const chain = p.sessions[p.sessions.length - 1];
  return (
    <section class={`authenticity ${state}`} aria-live="polite" data-state={state} data-verified={good} data-failed={bad.length}>
      <span class={`badge ${state}`}>{state === 'failed' ? 'NOT VERIFIED by this browser' : state === 'verified' ? 'verified by this browser' : 'checking…'}</span>{' '}
      {state === 'failed' ? <span class="error">{bad[0]?.problem}</span> : <span class="muted">{good} fragments checked against the camera's signed records</span>}
      {chain !== undefined && (
        <details>
          <summary>Camera identity: {chain.chainOk ? 'certificate chain to the manufacturer root holds' : `certificate chain does not hold: ${chain.problem ?? ''}`}</summary>
          <ol class="chain">
            {chain.chain.map((s) => (
              <li key={s}>{s}</li>
            ))}
            <li class="muted">manufacturer root (from the NVR's trust settings)</li>
          </ol>
        </details>
      )}
    </section>
  );
}

const WINDOWS = [
  ['10 min', 600_000],
  ['1 h', 3_600_000],
  ['6 h', 6 * 3_600_000],
  ['24 h', 86_400_000],
] as const;

const iso = (ms: number): string => new Date(ms).toISOString();
/** ms → the value of an <input type="datetime-local"> (local time, seconds). */
const local = (ms: number): string => {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 19);
};
const fromLocal = (v: string): number => Date.parse(v); // a datetime-local value parses as local time

export function CameraPage(p: { readonly api: Api; readonly serial: string }): JSX.Element {
  const { api, serial } = p;
  const canLive = api.can(serial, 'live');
  const canPlay = api.can(serial, 'playback');
  const [mode, setMode] = useState<'live' | 'recorded'>(canLive ? 'live' : 'recorded');
  const [span, setSpan] = useState<number>(600_000);
  const [now, setNow] = useState(() => Date.now());
  // the window ends where the token's playback window does (its issue time), never in the future
  const allowed = api.window(serial, 'playback');
  const to = Math.min(now, allowed?.to ?? now);
  const from = to - span;
  const [timeline, setTimeline] = useState<TimelineData | undefined>(undefined);
  const [message, setMessage] = useState<string | undefined>(undefined);
  const [playhead, setPlayhead] = useState<number | undefined>(undefined);
  const [selection, setSelection] = useState<{ from: number; to: number }>(() => ({ from: Date.now() - 120_000, to: Date.now() }));
  const video = useRef<HTMLVideoElement>(null);
  const player = useRef<RangePlayer | undefined>(undefined);
  const loaded = useRef<{ from: number; to: number } | undefined>(undefined);
  const checker = useRef(new AuthenticityChecker(api, serial));
  const [checks, setChecks] = useState<FragmentCheck[]>([]);
  const [sessions, setSessions] = useState<SessionCheck[]>([]);
  const onSegment = useCallback((url: string, data: ArrayBuffer): void => {
    const name = mediaName(url);
    if (name === undefined) return;
    const c = checker.current;
    void c
      .fragment(name.session, name.seq, data)
      .then(async (r) => {
        setChecks((all) => [...all.filter((x) => x.session !== r.session || x.seq !== r.seq), r]);
        const s = await c.session(name.session);
        setSessions((all) => (all.some((x) => x.session === s.session) ? all : [...all, s]));
      })
      .catch((e: unknown) => setChecks((all) => [...all, { session: name.session, seq: name.seq, ok: false, problem: `could not be checked: ${e instanceof Error ? e.message : String(e)}`, from: NaN, to: NaN }]));
  }, []);

  // the window follows the clock while live or idle; the timeline is fetched again every 10 s
  useEffect(() => {
    const t = window.setInterval(() => {
      if (mode === 'live' || playhead === undefined) setNow(Date.now());
    }, 10_000);
    return () => window.clearInterval(t);
  }, [mode, playhead]);
  useEffect(() => {
    if (!canPlay) return;
    api
      .get<TimelineData>(`/v1/cameras/${encodeURIComponent(serial)}/timeline?from=${iso(from)}&to=${iso(to)}`)
      .then(setTimeline)
      .catch((e: unknown) => setMessage(e instanceof Error ? e.message : String(e)));
  }, [api, serial, from, to, canPlay]);

  /** `at`, or the start of the next recorded range when nothing is recorded at `at` (a gap, before the first). */
  const recordedFrom = (at: number): number => {
    const held = (timeline?.ranges ?? []).filter((r) => r.state === 'verified' || r.state === 'unverified').map((r) => ({ from: Date.parse(r.from), to: Date.parse(r.to) }));
    if (held.length === 0 || held.some((r) => r.from <= at && at < r.to)) return at;
    return (held.find((r) => r.from > at) ?? held[held.length - 1])?.from ?? at;
  };
  const play = useCallback(
    (wanted: number): void => {
      const at = recordedFrom(wanted);
      if (!canPlay) {
        setMessage('You have no playback grant on this camera.');
        return;
      }
      setMode('recorded');
      setMessage(undefined);
      const run = async (): Promise<void> => {
        const v = video.current;
        if (v === null) return;
        if (player.current === undefined) player.current = await RangePlayer.create(v, api, { error: setMessage, segment: onSegment });
        const range = loaded.current;
        if (range !== undefined && at >= range.from && at < range.to) {
          v.currentTime = (at - range.from) / 1000;
          await v.play().catch(() => undefined);
          return;
        }
        // a new range: a fresh token, so that the window reaches as close to now as the grants allow
        await api.refresh();
        const end = Math.min(Date.now(), api.window(serial, 'playback')?.to ?? Date.now());
        loaded.current = { from: end - span, to: end };
        setNow(end);
        await player.current.load(serial, end - span, end, Math.min(Math.max(at, end - span), end - 1000));
      };
      run().catch((e: unknown) => setMessage(typeof e === 'object' && e !== null && 'code' in e ? describeShakaError(e as Parameters<typeof describeShakaError>[0]) : e instanceof Error ? e.message : String(e)));
    },
    [api, serial, span, canPlay, timeline],
  );
  // the playhead in wall-clock time
  useEffect(() => {
    const v = video.current;
    if (v === null) return undefined;
    const onTime = (): void => {
      if (loaded.current !== undefined) setPlayhead(loaded.current.from + v.currentTime * 1000);
    };
    // stalls: playback that waits for data once it has started (a seek is not a stall)
    let playing = false;
    let stalls = 0;
    const onPlaying = (): void => {
      playing = true;
    };
    const onWaiting = (): void => {
      if (playing && !v.seeking) v.dataset['stalls'] = String(++stalls);
    };
    const onSeeking = (): void => {
      playing = false;
    };
    v.dataset['stalls'] = '0';
    v.addEventListener('timeupdate', onTime);
    v.addEventListener('playing', onPlaying);
    v.addEventListener('waiting', onWaiting);
    v.addEventListener('seeking', onSeeking);
    return () => {
      v.removeEventListener('timeupdate', onTime);
      v.removeEventListener('playing', onPlaying);
      v.removeEventListener('waiting', onWaiting);
      v.removeEventListener('seeking', onSeeking);
    };
  }, [mode]);
  useEffect(
    () => () => {
      void player.current?.destroy();
      player.current = undefined;
    },
    [],
  );

  return (
    <main class="camera-page" data-serial={serial}>
      <div class="toolbar">
        <a href="#/">‹ all cameras</a>
        <h1>{serial}</h1>
        <div role="group" aria-label="view">
          <button type="button" aria-pressed={mode === 'live'} disabled={!canLive} onClick={() => setMode('live')}>
            Live
          </button>
          <button type="button" aria-pressed={mode === 'recorded' && canPlay} disabled={!canPlay} onClick={() => play(playhead ?? Date.now() - 120_000)}>
            Recorded
          </button>
        </div>
        <div role="group" aria-label="timeline window">
          {WINDOWS.map(([label, ms]) => (
            <button
              key={label}
              type="button"
              aria-pressed={span === ms}
              onClick={() => {
                setSpan(ms);
                setNow(Date.now());
              }}
            >
              {label}
            </button>
          ))}
        </div>
      </div>
      <div class="viewer">
        {mode === 'live' ? <LiveTile api={api} serial={serial} large /> : null}
        <video ref={video} class={mode === 'recorded' && canPlay ? 'recorded' : 'hidden'} controls muted playsInline aria-label={`recorded video of ${serial}`} data-playhead={playhead ?? ''} />
      </div>
      {message !== undefined && (
        <p role="alert" class="error">
          {message}
        </p>
      )}
      {canPlay ? (
        <>
          {mode === 'recorded' && <Authenticity checks={checks} sessions={sessions} />}
          <Timeline data={timeline} from={from} to={to} playhead={mode === 'recorded' ? playhead : undefined} selection={selection} unverified={checks.filter((c) => !c.ok && Number.isFinite(c.from)).map((c) => ({ from: c.from, to: c.to }))} onSeek={play} />
        </>
      ) : (
        <p class="notice">You have no playback grant on this camera: its recordings are not shown.</p>
      )}
      <RangeActions api={api} serial={serial} selection={selection} setSelection={setSelection} playhead={playhead} onDone={() => setNow(Date.now())} />
    </main>
  );
}

function RangeActions(p: { readonly api: Api; readonly serial: string; readonly selection: { from: number; to: number }; readonly setSelection: (s: { from: number; to: number }) => void; readonly playhead: number | undefined; readonly onDone: () => void }): JSX.Element | null {
  const { api, serial, selection } = p;
  const canLock = api.can(serial, 'lock');
  const canExport = api.can(serial, 'export');
  const [caseId, setCaseId] = useState('');
  const [reason, setReason] = useState('');
  const [result, setResult] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [jobs, setJobs] = useState(0);
  if (!canLock && !canExport) return null;
  const body = { from: iso(selection.from), to: iso(selection.to), case: caseId.trim(), reason: reason.trim() };
  const act = (what: 'locks' | 'exports'): void => {
    setError(undefined);
    setResult(undefined);
    api
      .refresh()
      .then(() => api.post<{ id?: string; lock?: { id: number } }>(`/v1/cameras/${encodeURIComponent(serial)}/${what}`, body))
      .then(() => {
        setResult(what === 'locks' ? `Locked ${new Date(selection.from).toLocaleString()} – ${new Date(selection.to).toLocaleString()} for case ${body.case}.` : 'Export requested: the bundle is made on the NVR and listed below.');
        setJobs(jobs + 1);
        p.onDone();
      })
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  };
  return (
    <section class="range-actions" aria-label="lock or export a range">
      <h2>Selected range</h2>
      <div class="fields">
        <label>
          From
          <input type="datetime-local" step={1} value={local(selection.from)} onInput={(e) => p.setSelection({ from: fromLocal(e.currentTarget.value), to: selection.to })} />
        </label>
        <label>
          To
          <input type="datetime-local" step={1} value={local(selection.to)} onInput={(e) => p.setSelection({ from: selection.from, to: fromLocal(e.currentTarget.value) })} />
        </label>
        <button type="button" disabled={p.playhead === undefined} onClick={() => p.playhead !== undefined && p.setSelection({ from: p.playhead, to: Math.max(selection.to, p.playhead + 1000) })}>
          Start at playhead
        </button>
        <button type="button" disabled={p.playhead === undefined} onClick={() => p.playhead !== undefined && p.setSelection({ from: Math.min(selection.from, p.playhead - 1000), to: p.playhead })}>
          End at playhead
        </button>
        <label>
          Case
          <input name="case" value={caseId} required onInput={(e) => setCaseId(e.currentTarget.value)} />
        </label>
        <label>
          Reason
          <input name="reason" value={reason} required onInput={(e) => setReason(e.currentTarget.value)} />
        </label>
      </div>
      <div class="buttons">
        {canLock && (
          <button type="button" disabled={body.case === '' || body.reason === ''} onClick={() => act('locks')}>
            Lock range
          </button>
        )}
        {canExport && (
          <button type="button" disabled={body.case === '' || body.reason === ''} onClick={() => act('exports')}>
            Export evidence bundle
          </button>
        )}
      </div>
      <p role="status" class="ok">
        {result ?? ''}
      </p>
      {error !== undefined && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {canExport && <ExportList api={api} camera={serial} refresh={jobs} />}
    </section>
  );
}
