/** Report ranges: merging adjacent frames of the same status and reason (shared by both verifier layers). */
import type { ReportRange } from './report.js';

/** Appends `r`, or extends the last range when `r` continues it (same status, reason and bounds, adjacent frames). */
export function addRange(ranges: ReportRange[], r: ReportRange): void {
  const last = ranges[ranges.length - 1];
  if (
    last !== undefined &&
    last.status === r.status &&
    last.reason === r.reason &&
    last.notAfter === r.notAfter &&
    r.firstFrame <= last.lastFrame + 1 &&
    r.firstFrame >= last.firstFrame &&
    (last.inputLast === undefined) === (r.inputFirst === undefined) &&
    (r.inputFirst === undefined || r.inputFirst === (last.inputLast ?? -2) + 1)
  ) {
    last.lastFrame = Math.max(last.lastFrame, r.lastFrame);
    last.end = Math.max(last.end, r.end);
    if (r.inputLast !== undefined) last.inputLast = r.inputLast;
    return;
  }
  ranges.push({ ...r });
}

/**
 * Puts zero-length marker ranges (in stream order) among `ranges` (in stream order) at their frame: after what
 * starts before it and the markers already placed there, before the rest. A marker repeating the one placed just
 * before it (same frame, same reason) is dropped.
 */
export function insertMarkers(ranges: ReportRange[], markers: readonly ReportRange[]): void {
  let from = 0;
  let last: ReportRange | undefined;
  for (const m of markers) {
    if (last !== undefined && last.firstFrame === m.firstFrame && last.reason === m.reason) continue;
    if (last !== undefined && m.firstFrame < last.firstFrame) from = 0;
    let i = from;
    while (i < ranges.length && (ranges[i] as ReportRange).firstFrame < m.firstFrame) i++;
    last = { ...m };
    ranges.splice(i, 0, last);
    from = i + 1;
  }
}
