/**
 * Path building: every path from a leaf to a trust anchor along which each signature verifies.
 *
 * Issuer candidates are chosen by name (issuer DN == subject DN), those whose subject key identifier matches the
 * child's authority key identifier first, and EVERY candidate is tried: a certificate that copies a genuine CA's
 * names (and even its key identifier) only fails its signature check, and the next candidate is tried, so it
 * cannot shadow the real CA. A certificate never appears twice in one path (loop guard), paths are at most
 * MAX_DEPTH long and the whole search is bounded by MAX_SIGNATURE_CHECKS.
 */
import type { X509Certificate } from './x509.js';
import { authorityKeyId, type Failure, isSelfIssued, issuerOf, namesEqual, sha256Hex, signatureVerifies, subjectKeyId, subjectOf } from './_certs.js';

export const MAX_DEPTH = 8;
const MAX_SIGNATURE_CHECKS = 256;
const MAX_COMPLETE_PATHS = 16;

export interface PathSearch {
  /** Complete paths, leaf first, anchor last, in order of preference. */
  readonly complete: readonly (readonly X509Certificate[])[];
  /** When no path is complete: the failure of the path that got furthest, and that path. */
  readonly failure?: Failure;
  readonly partial: readonly X509Certificate[];
}

export class PathBuilder {
  private readonly pool: readonly X509Certificate[];
  private readonly anchors: ReadonlySet<string>;
  private readonly verified = new Map<string, Promise<boolean>>();
  private checks = 0;
  private readonly complete: X509Certificate[][] = [];
  private best: { chain: X509Certificate[]; failure: Failure } | undefined;

  /** `roots` are trust anchors (used only if self-signed); `pool` holds every certificate that may be an issuer. */
  constructor(roots: readonly X509Certificate[], pool: readonly X509Certificate[]) {
    this.anchors = new Set(roots.map(sha256Hex));
    const seen = new Set<string>();
    this.pool = pool.filter((c) => {
      const fp = sha256Hex(c);
      if (seen.has(fp)) return false;
      seen.add(fp);
      return true;
    });
  }

  isRoot(cert: X509Certificate): boolean {
    return this.anchors.has(sha256Hex(cert));
  }

  /** Memoised signature check of `cert` under `issuer`'s key. */
  verifies(cert: X509Certificate, issuer: X509Certificate): Promise<boolean> {
    const key = `${sha256Hex(cert)}/${sha256Hex(issuer)}`;
    let p = this.verified.get(key);
    if (p === undefined) {
      this.checks++;
      p = signatureVerifies(cert, issuer);
      this.verified.set(key, p);
    }
    return p;
  }

  /** Self-signed: self-issued and its own key verifies its signature. */
  async isSelfSigned(cert: X509Certificate): Promise<boolean> {
    return isSelfIssued(cert) && (await this.verifies(cert, cert));
  }

  async build(leaf: X509Certificate): Promise<PathSearch> {
    await this.extend([leaf]);
    if (this.complete.length > 0) return { complete: this.complete, partial: [] };
    const best = this.best ?? { chain: [leaf], failure: { code: 'NO_ISSUER', reason: `unable to find issuer "${issuerOf(leaf)}"` } };
    return { complete: [], failure: best.failure, partial: best.chain };
  }

  private dead(chain: X509Certificate[], code: string, reason: string): void {
    // keep the failure of the path that got furthest; on a tie, the first one found
    if (this.best === undefined || chain.length > this.best.chain.length) this.best = { chain: [...chain], failure: { code, reason } };
  }

  private candidates(cert: X509Certificate, path: readonly X509Certificate[]): X509Certificate[] {
    const onPath = new Set(path.map(sha256Hex));
    const named = this.pool.filter((c) => !onPath.has(sha256Hex(c)) && namesEqual(c.subjectName, cert.issuerName));
    const aki = authorityKeyId(cert);
    if (aki === undefined) return named;
    const rank = (c: X509Certificate): number => {
      const ski = subjectKeyId(c);
      return ski === aki ? 0 : ski === undefined ? 1 : 2;
    };
    return named.map((c, i) => ({ c, i, r: rank(c) })).sort((a, b) => a.r - b.r || a.i - b.i).map((x) => x.c);
  }

  private async extend(path: X509Certificate[]): Promise<void> {
    if (this.complete.length >= MAX_COMPLETE_PATHS) return;
    const cert = path[path.length - 1] as X509Certificate;
    if (isSelfIssued(cert)) {
      const selfSigned = await this.verifies(cert, cert);
      if (selfSigned && this.isRoot(cert)) {
        this.complete.push([...path]);
        return;
      }
      if (selfSigned) {
        // a self-signed certificate can only be an anchor; one that is not trusted ends the path
        this.dead(path, 'UNTRUSTED_ROOT', `self-signed certificate "${subjectOf(cert)}" is not a trusted root`);
        return;
      }
      if (this.isRoot(cert)) {
        this.dead(path, 'BAD_SIGNATURE', `signature of root "${subjectOf(cert)}" does not verify with its own key`);
        return;
      }
      // self-issued but not self-signed (e.g. a key roll-over certificate): look for its issuer like any other
    }
    if (path.length >= MAX_DEPTH) {
      this.dead(path, 'PATH_LIMIT', `no trusted root within ${MAX_DEPTH} certificates`);
      return;
    }
    const candidates = this.candidates(cert, path);
    if (candidates.length === 0) {
      this.dead(path, 'NO_ISSUER', `unable to find issuer "${issuerOf(cert)}"`);
      return;
    }
    for (const issuer of candidates) {
      if (this.checks >= MAX_SIGNATURE_CHECKS) {
        this.dead(path, 'PATH_LIMIT', 'path search limit exceeded');
        return;
      }
      if (!(await this.verifies(cert, issuer))) {
        this.dead(path, 'BAD_SIGNATURE', `signature of "${subjectOf(cert)}" does not verify with issuer "${subjectOf(issuer)}"`);
        continue;
      }
      await this.extend([...path, issuer]);
    }
  }
}
