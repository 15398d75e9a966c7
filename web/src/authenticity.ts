/**
 * The viewer's own authenticity check (issue 14 §1), with WebCrypto in this browser — not the NVR's word:
 *
 *   - the session's certificate chain (GET …/chain.pem) must lead, signature by signature and valid at the session's
 *     start, to the manufacturer root (GET /v1/trust/root.pem), every issuer a CA, the leaf naming the camera;
 *   - the session's records (GET …/records) must each be signed by that leaf's key over their canonical JSON
 *     (src/recording/canonical.ts, the camera's own code) and chained: `prev` = SHA-256 of the record before, the
 *     first after 64 zeros;
 *   - every fragment the player fetched must hash (SHA-256 of the bytes the player was given) to its record's
 *     `sha256`, and the init segment to the session record's `init`.
 *
 * What it cannot see: a page is as trustworthy as the server that sent its script, and the root it checks against
 * comes from the same NVR. `keyframe verify` on an exported bundle, with a root the investigator holds, is the check
 * that stands as evidence; this one tells a viewer at once that what is on screen is what the camera signed.
 */
import 'reflect-metadata';
import { BasicConstraintsExtension, X509Certificate } from '@peculiar/x509';
import { GENESIS, canonicalJson } from '../../src/recording/canonical.js';
import type { Api } from './api.js';

export interface FragmentCheck {
  readonly session: string;
  readonly seq: number;
  readonly ok: boolean;
  readonly problem?: string;
  /** Capture time of the fragment (from its signed record and the session record's start), ms; NaN if unknown. */
  readonly from: number;
  readonly to: number;
}

export interface SessionCheck {
  readonly session: string;
  /** The chain's subjects, leaf first, as the check saw them. */
  readonly chain: readonly string[];
  readonly chainOk: boolean;
  readonly problem?: string;
}

interface SignedRecord {
  readonly kind?: string;
  readonly session?: string;
  readonly serial?: string;
  readonly start?: number | string;
  readonly end?: number;
  readonly seq?: number;
  readonly sha256?: string;
  readonly init?: string;
  readonly prev?: string;
  readonly sig?: string;
}

interface SessionState {
  check: SessionCheck;
  key: CryptoKey | undefined;
  algorithm: AlgorithmIdentifier | EcdsaParams;
  /** Fragment records by seq, each with whether its signature and link held. */
  records: Map<number, { record: SignedRecord; problem?: string }>;
  sessionRecord: SignedRecord | undefined;
  startMs: number;
  firstMedia: number | undefined;
  fetchedAt: number;
  /** Records checked so far (the chain continues from the last). */
  count: number;
  lastHash: string;
}

const hex = (b: ArrayBuffer): string => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
const sha256 = async (data: BufferSource | string): Promise<string> => hex(await crypto.subtle.digest('SHA-256', typeof data === 'string' ? new TextEncoder().encode(data) : data));

function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** An ECDSA signature in DER (SEQUENCE of two INTEGERs) as WebCrypto's r ‖ s, each `size` bytes; undefined if malformed. */
export function derToRaw(der: Uint8Array, size: number): Uint8Array<ArrayBuffer> | undefined {
  let i = 0;
  const len = (): number | undefined => {
    const first = der[i++];
    if (first === undefined) return undefined;
    if (first < 0x80) return first;
    const n = first & 0x7f;
    if (n < 1 || n > 2) return undefined;
    let v = 0;
    for (let k = 0; k < n; k++) v = (v << 8) | (der[i++] ?? 0);
    return v;
  };
  if (der[i++] !== 0x30 || len() === undefined) return undefined;
  const out = new Uint8Array(2 * size);
  for (let part = 0; part < 2; part++) {
    if (der[i++] !== 0x02) return undefined;
    const l = len();
    if (l === undefined || l < 1 || i + l > der.length) return undefined;
    let v = der.subarray(i, i + l);
    i += l;
    while (v.length > 1 && v[0] === 0) v = v.subarray(1);
    if (v.length > size) return undefined;
    out.set(v, part * size + size - v.length);
  }
  return i === der.length ? out : undefined;
}

function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function isCa(c: X509Certificate): boolean {
  return c.getExtension(BasicConstraintsExtension)?.ca === true;
}

/** The camera serial a device certificate names (subject serialNumber, OID 2.5.4.5), if any. */
function subjectSerial(c: X509Certificate): string | undefined {
  return c.subjectName.getField('2.5.4.5')[0] ?? c.subjectName.getField('serialNumber')[0];
}

export class AuthenticityChecker {
  private roots: Promise<X509Certificate[]> | undefined;
  private readonly sessions = new Map<string, Promise<SessionState>>();

  constructor(
    private readonly api: Api,
    private readonly serial: string,
  ) {}

  private rootCerts(): Promise<X509Certificate[]> {
    this.roots ??= this.api
      .nvr('/v1/trust/root.pem')
      .then(async (r) => {
        if (!r.ok) throw new Error(`the manufacturer root could not be read (${r.status})`);
        return splitPem(await r.text()).map((p) => new X509Certificate(p));
      })
      .catch((e: unknown) => {
        this.roots = undefined;
        throw e;
      });
    return this.roots;
  }

  private base(session: string): string {
    return `/v1/media/${encodeURIComponent(this.serial)}/${session}`;
  }

  /** The chain of `session` checked against the manufacturer root at `at`; the leaf's key when it holds. */
  private async checkChain(pem: string, at: Date, recordSerial: string | undefined): Promise<{ check: Omit<SessionCheck, 'session'>; key?: CryptoKey; algorithm: AlgorithmIdentifier | EcdsaParams }> {
    const certs = splitPem(pem).map((p) => new X509Certificate(p));
    const subjects = certs.map((c) => c.subject);
    const fail = (problem: string): { check: Omit<SessionCheck, 'session'>; algorithm: AlgorithmIdentifier } => ({ check: { chain: subjects, chainOk: false, problem }, algorithm: { name: 'none' } });
    const leaf = certs[0];
    if (leaf === undefined) return fail('the session has no certificate chain');
    const roots = await this.rootCerts();
    const pinned = (c: X509Certificate): boolean => roots.some((r) => r.equal(c));
    for (let i = 0; ; i++) {
      const c = certs[i] as X509Certificate;
      if (pinned(c)) {
        // the chain carries the root itself: it must be valid then too
        if (!(await c.verify({ date: at }))) return fail(`the manufacturer root is not valid at ${at.toISOString()}`);
        break;
      }
      const next = certs[i + 1];
      const issuer = next ?? roots.find((r) => r.subject === c.issuer);
      if (issuer === undefined) return fail(`the chain ends at ${c.subject}, which the manufacturer root did not issue`);
      if (issuer.subject !== c.issuer) return fail(`${c.subject} is not issued by ${issuer.subject}`);
      if (!isCa(issuer)) return fail(`${issuer.subject} is not a CA`);
      if (!(await c.verify({ publicKey: issuer.publicKey, date: at }))) return fail(`${c.subject}: its signature or its validity at ${at.toISOString()} does not hold`);
      if (next === undefined) break; // issued by the manufacturer root
    }
    const serial = subjectSerial(leaf);
    if (serial !== this.serial || (recordSerial !== undefined && recordSerial !== serial)) return fail(`the certificate names camera ${serial ?? '(none)'}, not ${this.serial}`);
    const alg = leaf.publicKey.algorithm as EcKeyAlgorithm | RsaHashedKeyAlgorithm;
    const algorithm: AlgorithmIdentifier | EcdsaParams = alg.name === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5' };
    const importAlg = alg.name === 'ECDSA' ? { name: 'ECDSA', namedCurve: (alg as EcKeyAlgorithm).namedCurve } : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    const key = await crypto.subtle.importKey('spki', leaf.publicKey.rawData, importAlg, false, ['verify']);
    return { check: { chain: subjects, chainOk: true }, key, algorithm };
  }

  private async verifySig(st: SessionState, r: SignedRecord): Promise<boolean> {
    if (st.key === undefined || typeof r.sig !== 'string') return false;
    const { sig, ...unsigned } = r;
    const data = new TextEncoder().encode(canonicalJson(unsigned));
    let signature: Uint8Array<ArrayBuffer> | undefined = base64ToBytes(sig);
    if ((st.algorithm as EcdsaParams).name === 'ECDSA') {
      const size = (st.key.algorithm as EcKeyAlgorithm).namedCurve === 'P-384' ? 48 : 32;
      signature = derToRaw(signature, size);
      if (signature === undefined) return false;
    }
    return crypto.subtle.verify(st.algorithm, st.key, signature, data);
  }

  /** Reads records not yet checked (a session still recording grows) and checks them in chain order. */
  private async readRecords(st: SessionState): Promise<void> {
    const r = await this.api.nvr(`${this.base(st.check.session)}/records`);
    if (!r.ok) throw new Error(`the session's records could not be read (${r.status})`);
    const lines = (await r.text()).split('\n').filter((l) => l !== '');
    st.fetchedAt = Date.now();
    for (const line of lines.slice(st.count)) {
      let rec: SignedRecord;
      try {
        rec = JSON.parse(line) as SignedRecord;
      } catch {
        rec = {};
      }
      st.count++;
      const problems: string[] = [];
      if (!(await this.verifySig(st, rec))) problems.push('its signature does not verify with the camera’s key');
      if (rec.prev !== st.lastHash) problems.push('it does not follow the record before it (hash chain broken)');
      st.lastHash = await sha256(canonicalJson(rec));
      if (rec.kind === 'session') {
        st.sessionRecord = rec;
        if (typeof rec.start === 'string') st.startMs = Date.parse(rec.start);
        continue;
      }
      if (rec.kind !== undefined || typeof rec.seq !== 'number') continue; // end and lost records
      if (rec.seq === 0 && typeof rec.start === 'number') st.firstMedia = rec.start;
      st.records.set(rec.seq, { record: rec, ...(problems.length > 0 ? { problem: `record ${rec.seq}: ${problems.join('; ')}` } : {}) });
    }
  }

  private state(session: string): Promise<SessionState> {
    let p = this.sessions.get(session);
    if (p === undefined) {
      p = (async () => {
        const st: SessionState = { check: { session, chain: [], chainOk: false }, key: undefined, algorithm: { name: 'none' }, records: new Map(), sessionRecord: undefined, startMs: NaN, firstMedia: undefined, fetchedAt: 0, count: 0, lastHash: GENESIS };
        // the first record (the session record) gives the camera and the start the chain is checked at
        const rr = await this.api.nvr(`${this.base(session)}/records`);
        const first = rr.ok ? (JSON.parse((await rr.text()).split('\n')[0] ?? '{}') as SignedRecord) : {};
        const start = typeof first.start === 'string' ? new Date(first.start) : new Date();
        const chain = await this.api.nvr(`${this.base(session)}/chain.pem`);
        const c = chain.ok ? await this.checkChain(await chain.text(), start, first.serial) : { check: { chain: [], chainOk: false, problem: `the session's certificate chain could not be read (${chain.status})` }, algorithm: { name: 'none' } };
        st.check = { session, ...c.check };
        st.key = 'key' in c ? c.key : undefined;
        st.algorithm = c.algorithm;
        await this.readRecords(st);
        return st;
      })();
      this.sessions.set(session, p);
      p.catch(() => this.sessions.delete(session));
    }
    return p;
  }

  async session(session: string): Promise<SessionCheck> {
    return (await this.state(session)).check;
  }

  /** Checks the bytes of fragment `seq` (or the init segment, seq -1) of `session` as the player got them. */
  async fragment(session: string, seq: number, bytes: ArrayBuffer): Promise<FragmentCheck> {
    const st = await this.state(session);
    if (seq >= 0 && !st.records.has(seq) && Date.now() - st.fetchedAt > 1000) await this.readRecords(st);
    const entry = seq >= 0 ? st.records.get(seq) : undefined;
    const rec = entry?.record;
    const from = rec !== undefined && typeof rec.start === 'number' && st.firstMedia !== undefined ? st.startMs + (rec.start - st.firstMedia) * 1000 : NaN;
    const to = rec !== undefined && typeof rec.end === 'number' && st.firstMedia !== undefined ? st.startMs + (rec.end - st.firstMedia) * 1000 : NaN;
    const result = (problem?: string): FragmentCheck => ({ session, seq, ok: problem === undefined, ...(problem !== undefined ? { problem } : {}), from, to });
    if (!st.check.chainOk) return result(st.check.problem ?? 'the camera certificate chain does not hold');
    const digest = await sha256(bytes);
    if (seq < 0) {
      if (st.sessionRecord === undefined) return result('the session record is missing');
      return result(digest === st.sessionRecord.init ? undefined : 'the init segment differs from the one the camera signed');
    }
    if (entry === undefined || rec === undefined) return result(`fragment ${seq} has no signed record`);
    if (entry.problem !== undefined) return result(entry.problem);
    return result(digest === rec.sha256 ? undefined : `fragment ${seq}: its bytes differ from what the camera signed`);
  }
}
