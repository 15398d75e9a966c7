/**
 * A camera's timeline (issue 12 §2, the admin API; issue 14's timeline colours): which parts of a time window are
 * recorded and verified, recorded but not (yet) verified, quarantined, still on the camera but not uploaded, lost
 * on the camera (its ring buffer overwrote them, by its own signed record), expired by retention, or missing with
 * no explanation — and, orthogonally, which parts are under an evidence lock.
 *
 * Pure: it takes ranges (a store keeps contiguous runs of segments as spans, so a month is a few ranges, not
 * millions of segments) and returns the window cut into non-overlapping ranges. Where sources overlap the most
 * reassuring explained state does not win over a worse one blindly: the order below is by what the NVR holds
 * (held video first), then what explains an absence (the camera still has it, the camera lost it, retention
 * removed it), and "missing" only where nothing explains the gap.
 */

export type TimelineState = 'verified' | 'unverified' | 'quarantined' | 'on-camera' | 'lost' | 'expired' | 'missing';

/** Precedence where ranges overlap: lower wins. */
const PRECEDENCE: Readonly<Record<TimelineState, number>> = { verified: 0, unverified: 1, quarantined: 2, 'on-camera': 3, lost: 4, expired: 5, missing: 6 };

/** A half-open range [start, end) of wall-clock time in ms since the epoch. */
export interface TimeRange {
  readonly start: number;
  readonly end: number;
}

export interface StateRange extends TimeRange {
  readonly state: TimelineState;
}

export interface LockRange extends TimeRange {
  readonly caseId: string;
}

export interface TimelineInput {
  /** What the NVR stores (spans or single segments), each verified, unverified or quarantined. */
  readonly held: readonly StateRange[];
  /** What the camera says its ring buffer still holds but the NVR does not. */
  readonly onCamera?: readonly TimeRange[];
  /** What the camera's signed lost records say its ring buffer overwrote before upload. */
  readonly lost?: readonly TimeRange[];
  /** What retention removed (recorded as expired, never forgotten). */
  readonly expired?: readonly TimeRange[];
  readonly locks?: readonly LockRange[];
}

export interface Timeline {
  readonly from: number;
  readonly to: number;
  /** The window [from, to) cut into consecutive ranges, adjacent ranges of one state merged. */
  readonly ranges: readonly StateRange[];
  /** Evidence locks overlapping the window, clipped to it, in start order. */
  readonly locks: readonly LockRange[];
}

function valid(r: TimeRange): boolean {
  return Number.isFinite(r.start) && Number.isFinite(r.end) && r.end > r.start;
}

/** The timeline of [from, to). O(n log n) in the number of input ranges. */
export function buildTimeline(input: TimelineInput, from: number, to: number): Timeline {
  if (!(Number.isFinite(from) && Number.isFinite(to) && to > from)) throw new RangeError(`timeline window ${from}…${to} is empty or not finite`);
  const all: StateRange[] = [
    ...input.held,
    ...(input.onCamera ?? []).map((r) => ({ start: r.start, end: r.end, state: 'on-camera' as const })),
    ...(input.lost ?? []).map((r) => ({ start: r.start, end: r.end, state: 'lost' as const })),
    ...(input.expired ?? []).map((r) => ({ start: r.start, end: r.end, state: 'expired' as const })),
  ]
    .filter(valid)
    .map((r) => ({ start: Math.max(r.start, from), end: Math.min(r.end, to), state: r.state }))
    .filter((r) => r.end > r.start);

  // sweep over the boundaries, keeping a count of open ranges per state
  const events: { t: number; state: TimelineState; delta: 1 | -1 }[] = [];
  for (const r of all) events.push({ t: r.start, state: r.state, delta: 1 }, { t: r.end, state: r.state, delta: -1 });
  events.sort((a, b) => a.t - b.t);
  const open = new Array<number>(7).fill(0);
  const best = (): TimelineState => {
    for (const [state, p] of Object.entries(PRECEDENCE) as [TimelineState, number][]) if ((open[p] as number) > 0) return state;
    return 'missing';
  };
  const ranges: StateRange[] = [];
  const push = (start: number, end: number, state: TimelineState): void => {
    if (end <= start) return;
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last.state === state && last.end === start) ranges[ranges.length - 1] = { start: last.start, end, state };
    else ranges.push({ start, end, state });
  };
  let cursor = from;
  for (let i = 0; i < events.length; ) {
    const t = events[i]?.t as number;
    push(cursor, t, best());
    while (i < events.length && events[i]?.t === t) {
      const e = events[i] as (typeof events)[number];
      open[PRECEDENCE[e.state]] = (open[PRECEDENCE[e.state]] as number) + e.delta;
      i++;
    }
    cursor = t;
  }
  push(cursor, to, best());

  const locks = (input.locks ?? [])
    .filter(valid)
    .map((l) => ({ start: Math.max(l.start, from), end: Math.min(l.end, to), caseId: l.caseId }))
    .filter((l) => l.end > l.start)
    .sort((a, b) => a.start - b.start || a.end - b.end);
  return { from, to, ranges, locks };
}

/** Seconds of each state in a timeline (for summaries: "verified 99.7 %, on camera 12 s"). */
export function timelineTotals(t: Timeline): Record<TimelineState, number> {
  const totals: Record<TimelineState, number> = { verified: 0, unverified: 0, quarantined: 0, 'on-camera': 0, lost: 0, expired: 0, missing: 0 };
  for (const r of t.ranges) totals[r.state] += (r.end - r.start) / 1000;
  return totals;
}
