/**
 * The camera → NVR ingest protocol (issue 12; ARCHITECTURE.md "Data flow"; notes/system.md §1): DASH-IF Live Media
 * Ingest Interface-1 in shape — one HTTPS PUT per object (the certificate chain, the CMAF init segment, each CMAF
 * media segment, each signed record) over mutual TLS with the device certificate — plus the query a camera makes
 * after an outage to learn what the NVR holds (Interface-1 gives up on gaps longer than three segments; we do not).
 *
 *   PUT /ingest/v1/{serial}/{session}/chain      the device chain (PEM: device certificate, then its CA), once per session
 *   PUT /ingest/v1/{serial}/{session}/init       the CMAF init segment (its SHA-256 is in the session record)
 *   PUT /ingest/v1/{serial}/{session}/seg/{seq}  CMAF media segment `seq` (moof + mdat), as encrypted by the camera
 *   PUT /ingest/v1/{serial}/{session}/rec/{n}    record `n` of the session's record chain (canonical JSON, one line
 *                                                without the newline): 0 is the session record, then fragment,
 *                                                lost and end records in the order the camera signed them
 *   GET /ingest/v1/{serial}/sessions             the sessions the NVR holds for this camera (newest first, paged)
 *   GET /ingest/v1/{serial}/{session}/have       what the NVR holds of a session (HaveAnswer)
 *   PUT /ingest/v1/{serial}/ring                 the camera's ring report (RingReport, JSON): which fragments its
 *                                                ring buffer holds that the NVR may lack — unsigned, informational,
 *                                                the latest replaces the one before; the NVR's timeline shows those
 *                                                ranges as "on the camera, not yet uploaded" (204; 400 malformed or over 256 KiB)
 *
 * Rules, both sides:
 * - `serial` must be the serial of the TLS client certificate (403 otherwise: a camera writes only under its own
 *   name); `session` is the 32-hex-digit session id of the session record; `seq` and `n` are decimal, no sign, no
 *   leading zeros.
 * - Order: chain, init and rec/0 first (a segment or record of a session whose session record the NVR has not
 *   verified is 412); after that, segments and records in any order (backfill sends live first).
 * - A 2xx means durable and indexed (fsync'd file, committed index row). 201: stored now. 200: the same bytes were
 *   already held (idempotent retry). 409: different bytes under a name already used — refused, and an alarm on both
 *   sides. 422: stored in quarantine and flagged (a record whose signature or chain fails, a segment whose bytes
 *   differ from its signed record) — the camera must not resend it. 507: the NVR's storage is full of locked
 *   evidence — retry later, keep buffering. 400 malformed, 413 too large, 403 any authentication or authorisation
 *   failure (no reason given), 5xx: retry with back-off.
 * - Bodies are sent with Content-Length, or chunked while a segment is still being produced; the NVR hashes the
 *   body as it arrives and checks it against the record when both are present.
 */

export const INGEST_PREFIX = '/ingest/v1';

/** Records the camera signs besides the session, fragment and end records of src/recording/records.ts. */
export interface LostRecord {
  readonly v: 1;
  readonly kind: 'lost';
  /** The session whose record chain this record is in (the one recording when the loss happened). */
  readonly session: string;
  /** The session whose fragments were overwritten on the camera before the NVR had them. */
  readonly of: string;
  /** Fragments `from` … `to - 1` of that session. */
  readonly from: number;
  readonly to: number;
  /** Their media time range (seconds from that session's start). */
  readonly start: number;
  readonly end: number;
  /** Why: the ring buffer was full. */
  readonly reason: 'buffer-full';
  readonly counter: number;
  readonly prev: string;
  readonly sig: string;
}

/** Half-open ranges [from, to) of sequence numbers. */
export type SeqRanges = readonly (readonly [number, number])[];

/** GET …/{session}/have. */
export interface HaveAnswer {
  readonly session: string;
  readonly chain: boolean;
  readonly init: boolean;
  /** Media segments held (including quarantined ones: the camera must not resend those). */
  readonly segments: SeqRanges;
  /** Records held. */
  readonly records: SeqRanges;
  /** Whether the session's end record is held. */
  readonly ended: boolean;
}

/** GET …/sessions?before={session start ISO}&limit={n}. */
export interface SessionsAnswer {
  readonly sessions: readonly { readonly session: string; readonly start: string; readonly ended: boolean }[];
  /** More, older sessions exist: ask again with before = the last one's start. */
  readonly more: boolean;
}

/**
 * PUT …/{serial}/ring: `{"sessions":{"<session>":[[from,to],…]}}` — per session, half-open ranges [from, to) of
 * fragment sequence numbers the camera's ring holds and has not had acknowledged (at most 1000 sessions, 10000
 * ranges, 256 KiB). Send it after an outage (before backfill) and whenever it changes much; an empty map says the
 * ring holds nothing the NVR lacks. The NVR places the ranges on the wall clock by the session's start and the
 * fragment records or neighbouring segments it holds; a session it holds no session record of is not shown.
 */
export interface RingReport {
  readonly sessions: Readonly<Record<string, SeqRanges>>;
}

/** The largest ring report body. */
export const RING_REPORT_LIMIT = 256 * 1024;

const SERIAL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SESSION = /^[0-9a-f]{32}$/;
const INDEX = /^(0|[1-9][0-9]{0,9})$/;

export type IngestObject =
  | { readonly kind: 'chain' | 'init' | 'have'; readonly serial: string; readonly session: string }
  | { readonly kind: 'seg' | 'rec'; readonly serial: string; readonly session: string; readonly index: number }
  | { readonly kind: 'sessions' | 'ring'; readonly serial: string };

/** The path of an ingest object. */
export function ingestPath(o: IngestObject): string {
  const base = `${INGEST_PREFIX}/${encodeURIComponent(o.serial)}`;
  switch (o.kind) {
    case 'sessions':
    case 'ring':
      return `${base}/${o.kind}`;
    case 'seg':
    case 'rec':
      return `${base}/${o.session}/${o.kind}/${o.index}`;
    default:
      return `${base}/${o.session}/${o.kind}`;
  }
}

/** Parses an ingest path (without query); undefined when it is not one. */
export function parseIngestPath(path: string): IngestObject | undefined {
  if (!path.startsWith(`${INGEST_PREFIX}/`)) return undefined;
  const parts = path.slice(INGEST_PREFIX.length + 1).split('/');
  const serial = parts[0] !== undefined ? decodeURIComponentSafe(parts[0]) : undefined;
  if (serial === undefined || !SERIAL.test(serial)) return undefined;
  if (parts.length === 2 && (parts[1] === 'sessions' || parts[1] === 'ring')) return { kind: parts[1], serial };
  const session = parts[1];
  if (session === undefined || !SESSION.test(session)) return undefined;
  if (parts.length === 3 && (parts[2] === 'chain' || parts[2] === 'init' || parts[2] === 'have')) return { kind: parts[2], serial, session };
  if (parts.length === 4 && (parts[2] === 'seg' || parts[2] === 'rec') && INDEX.test(parts[3] ?? '')) return { kind: parts[2], serial, session, index: Number(parts[3]) };
  return undefined;
}

function decodeURIComponentSafe(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}
