/**
 * A static DASH MPD (ISO/IEC 23009-1) for a camera's recorded range, from the NVR's index (pure; issue 13 §5).
 *
 * - One Period per run of segments that share a recording session (one init segment) and a KID (one key epoch),
 *   with no missing sequence number and no time gap between them: a key rotation, a new session or a gap starts a
 *   new Period (DASH-IF IOP Part 6 § 9.2, rotation by Period). Period@start is the run's wall-clock start relative
 *   to the range's start; a gap in the recording is a jump between one Period's end and the next one's start — no
 *   segment is invented for it.
 * - Each Period's AdaptationSet signals Common Encryption with its `cenc:default_KID` and the W3C ClearKey system
 *   (e2719d58-…) with the KMS licence URL in `dashif:Laurl` (and the older `clearkey:Laurl`), as Shaka and dash.js
 *   read it; the init segments carry the same KID in a `pssh` (written by the camera).
 * - Segments are addressed by number, as the store names them: SegmentTemplate `$Number%06d$.m4s` with a SegmentTimeline in the track's
 *   timescale and `presentationTimeOffset` at the run's first media time, under a per-Period BaseURL
 *   (`…/media/SERIAL/SESSION/`); runs of equal durations are one `S` with a repeat count.
 */
export interface MpdSegment {
  readonly session: string;
  readonly seq: number;
  /** Media time of the segment in its session, seconds. */
  readonly mediaStart: number;
  readonly mediaEnd: number;
  /** Wall-clock start and end, ms since the epoch. */
  readonly wallStart: number;
  readonly wallEnd: number;
  /** The KID (32 hex digits), or null for clear video. */
  readonly kid: string | null;
  /** Bytes (for the nominal bandwidth), when known. */
  readonly size?: number;
}

export interface MpdTrack {
  /** RFC 6381, e.g. avc1.640028. */
  readonly codecs: string;
  readonly width: number;
  readonly height: number;
  readonly timescale: number;
}

export interface MpdInput {
  readonly serial: string;
  /** The recorded range asked for (ms); segments are clipped to it by whole segments. */
  readonly from: number;
  readonly to: number;
  /** Segments of the camera in the range, any order. */
  readonly segments: readonly MpdSegment[];
  /** The track of each session (from its init segment). */
  readonly tracks: ReadonlyMap<string, MpdTrack>;
  /** Where media lives: `${mediaBase}${serial}/${session}/init.mp4` and `…/${seq}.m4s` (absolute or relative). */
  readonly mediaBase: string;
  /** The KMS licence URL (ClearKey). */
  readonly licenceUrl: string;
  /** A jump in wall-clock time above this between consecutive segments is a gap (ms; default 500). */
  readonly gapToleranceMs?: number;
}

export interface MpdPeriod {
  readonly id: string;
  readonly session: string;
  readonly kid: string | null;
  readonly segments: readonly MpdSegment[];
  /** Seconds from the range's start. */
  readonly start: number;
  readonly duration: number;
}

const CLEARKEY_SYSTEM = 'e2719d58-a985-b3c9-781a-b030af78d30e';

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** ISO 8601 duration with millisecond precision (PT1H2M3.456S). */
export function isoDuration(seconds: number): string {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  const sec = s > 0 || (h === 0 && m === 0) ? `${s.toFixed(3).replace(/\.?0+$/, '') || '0'}S` : '';
  return `PT${h > 0 ? `${h}H` : ''}${m > 0 ? `${m}M` : ''}${sec}`;
}

/** The KID as a UUID (8-4-4-4-12), as `cenc:default_KID` writes it. */
export function kidUuid(kid: string): string {
  const k = kid.toLowerCase();
  return `${k.slice(0, 8)}-${k.slice(8, 12)}-${k.slice(12, 16)}-${k.slice(16, 20)}-${k.slice(20)}`;
}

/** Splits the segments into Periods (module comment). */
export function periodsOf(input: MpdInput): MpdPeriod[] {
  const tolerance = input.gapToleranceMs ?? 500;
  const segs = input.segments.filter((s) => s.wallEnd > input.from && s.wallStart < input.to && input.tracks.has(s.session)).sort((a, b) => a.wallStart - b.wallStart || a.seq - b.seq);
  const runs: MpdSegment[][] = [];
  for (const s of segs) {
    const run = runs.at(-1);
    const last = run?.at(-1);
    if (run !== undefined && last !== undefined && last.session === s.session && last.kid === s.kid && s.seq === last.seq + 1 && Math.abs(s.wallStart - last.wallEnd) <= tolerance) run.push(s);
    else runs.push([s]);
  }
  return runs.map((run, i) => {
    const first = run[0] as MpdSegment;
    const last = run.at(-1) as MpdSegment;
    return { id: `p${i}-${first.session.slice(0, 8)}-${first.seq}`, session: first.session, kid: first.kid, segments: run, start: (first.wallStart - input.from) / 1000, duration: last.mediaEnd - first.mediaStart };
  });
}

/** The MPD text. */
export function buildMpd(input: MpdInput): string {
  const periods = periodsOf(input);
  const total = periods.length === 0 ? 0 : Math.max(...periods.map((p) => p.start + p.duration));
  const lines: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:cenc="urn:mpeg:cenc:2013" xmlns:dashif="https://dashif.org/CPS" xmlns:clearkey="http://dashif.org/guidelines/clearKey" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="static" minBufferTime="PT2S" mediaPresentationDuration="${isoDuration(total)}">`,
  ];
  for (const p of periods) {
    const track = input.tracks.get(p.session) as MpdTrack;
    const ts = track.timescale;
    const first = p.segments[0] as MpdSegment;
    lines.push(`  <Period id="${escapeXml(p.id)}" start="${isoDuration(p.start)}" duration="${isoDuration(p.duration)}">`);
    lines.push(`    <BaseURL>${escapeXml(`${input.mediaBase}${encodeURIComponent(input.serial)}/${encodeURIComponent(p.session)}/`)}</BaseURL>`);
    lines.push(`    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" codecs="${escapeXml(track.codecs)}" width="${track.width}" height="${track.height}" segmentAlignment="true" startWithSAP="1">`);
    if (p.kid !== null) {
      lines.push(`      <ContentProtection schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cenc" cenc:default_KID="${kidUuid(p.kid)}"/>`);
      lines.push(`      <ContentProtection schemeIdUri="urn:uuid:${CLEARKEY_SYSTEM}" value="ClearKey1.0">`);
      lines.push(`        <dashif:Laurl>${escapeXml(input.licenceUrl)}</dashif:Laurl>`);
      lines.push(`        <clearkey:Laurl Lic_type="EME-1.0">${escapeXml(input.licenceUrl)}</clearkey:Laurl>`);
      lines.push('      </ContentProtection>');
    }
    lines.push(`      <Representation id="${escapeXml(input.serial)}" bandwidth="${bandwidthOf(p)}">`);
    lines.push(`        <SegmentTemplate timescale="${ts}" presentationTimeOffset="${Math.round(first.mediaStart * ts)}" startNumber="${first.seq}" initialization="init.mp4" media="$Number%06d$.m4s">`);
    lines.push('          <SegmentTimeline>');
    for (const e of timeline(p.segments, ts)) lines.push(`            <S${e.t !== undefined ? ` t="${e.t}"` : ''} d="${e.d}"${e.r > 0 ? ` r="${e.r}"` : ''}/>`);
    lines.push('          </SegmentTimeline>', '        </SegmentTemplate>', '      </Representation>', '    </AdaptationSet>', '  </Period>');
  }
  lines.push('</MPD>', '');
  return lines.join('\n');
}

/**
 * SegmentTimeline entries: a run of segments of one duration, each starting where the previous ended, is one `S`
 * with a repeat count `r`; `t` is written where a segment does not start where the previous one ended.
 */
export function timeline(segments: readonly MpdSegment[], timescale: number): { t?: number; d: number; r: number }[] {
  const out: { t?: number; d: number; r: number }[] = [];
  let next: number | undefined;
  for (const s of segments) {
    const t = Math.round(s.mediaStart * timescale);
    const d = Math.round(s.mediaEnd * timescale) - t;
    const last = out.at(-1);
    if (last !== undefined && t === next && d === last.d) last.r++;
    else out.push({ ...(t !== next ? { t } : {}), d, r: 0 });
    next = t + d;
  }
  return out;
}

/** A nominal bandwidth (the MPD requires one): 1 Mbit/s unless sizes say otherwise. */
function bandwidthOf(p: MpdPeriod): number {
  const bytes = p.segments.reduce((n, s) => n + (s.size ?? 0), 0);
  return bytes > 0 && p.duration > 0 ? Math.max(1000, Math.round((bytes * 8) / p.duration)) : 1_000_000;
}
