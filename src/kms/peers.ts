/**
 * Who is on the other end of a KMS connection. OpenSSL has already checked the chain to a pinned root (and the
 * CRLs) in the handshake; here the leaf is classified by which CA issued it, with keyframe's own validator:
 *   - a camera: a device certificate under the factory CA (purpose 'device'); its id is the subject serialNumber;
 *   - an administrator: an operator-CA certificate for TLS clients whose common name is in the config's admins.
 * Anything else is refused. Results are cached by certificate fingerprint until the certificate expires.
 */
import type { TLSSocket } from 'node:tls';
import { fingerprintSha256, summarize, verifyCertificate } from '../pki/verify.js';
import { X509Certificate } from '../pki/x509.js';
import type { X509Crl } from '../pki/x509.js';
import { ATTR_SERIAL_NUMBER } from '../pki/oids.js';

export type Peer =
  | { readonly kind: 'camera'; readonly serial: string; readonly cert: X509Certificate; readonly fingerprint: string }
  | { readonly kind: 'admin'; readonly name: string; readonly fingerprint: string };

export interface PeerTrustAnchors {
  readonly root: X509Certificate;
  readonly factory: X509Certificate;
  readonly operator: X509Certificate;
  readonly crls?: readonly X509Crl[];
  readonly admins: readonly string[];
}

function attribute(cert: X509Certificate, oid: string): string | undefined {
  const v = cert.subjectName.getField(oid);
  return v.length === 1 ? v[0] : undefined;
}

export class PeerClassifier {
  private readonly cache = new Map<string, { peer: Peer | undefined; until: number }>();
  /** A TLS connection's peer does not change: judged once per connection (getPeerCertificate is costly). */
  private bySocket = new WeakMap<TLSSocket, { peer: Peer | undefined; until: number }>();
  private anchors: PeerTrustAnchors;

  constructor(anchors: PeerTrustAnchors) {
    this.anchors = anchors;
  }

  /** New CRLs: every peer, connected or not, is judged again on its next request. */
  setCrls(crls: readonly X509Crl[]): void {
    this.anchors = { ...this.anchors, crls };
    this.cache.clear();
    this.bySocket = new WeakMap();
  }

  async classify(socket: TLSSocket): Promise<Peer | undefined> {
    if (!socket.authorized) return undefined;
    const known = this.bySocket.get(socket);
    if (known !== undefined && known.until > Date.now()) return known.peer;
    const judged = await this.classifyCertificate(socket);
    this.bySocket.set(socket, judged);
    return judged.peer;
  }

  private async classifyCertificate(socket: TLSSocket): Promise<{ peer: Peer | undefined; until: number }> {
    const raw = socket.getPeerCertificate().raw as Buffer | undefined;
    const now = Date.now();
    if (raw === undefined || raw.length === 0) return { peer: undefined, until: now + 60_000 };
    const key = raw.toString('base64');
    const hit = this.cache.get(key);
    if (hit !== undefined && hit.until > now) return hit;
    const cert = new X509Certificate(raw);
    const peer = await this.judge(cert);
    if (this.cache.size > 100_000) this.cache.clear();
    // judged again after ten minutes at most (a CRL may have changed) or when the certificate expires
    const judged = { peer, until: Math.min(cert.notAfter.getTime(), now + 10 * 60_000) };
    this.cache.set(key, judged);
    return judged;
  }

  private async judge(cert: X509Certificate): Promise<Peer | undefined> {
    const crls = this.anchors.crls !== undefined ? { crls: this.anchors.crls } : {};
    const fingerprint = fingerprintSha256(cert);
    const serial = attribute(cert, ATTR_SERIAL_NUMBER);
    if (serial !== undefined) {
      const r = await verifyCertificate(cert, { roots: [this.anchors.root], intermediates: [this.anchors.factory], purpose: 'device', ...crls });
      // issued by the factory CA itself (not merely under the same root)
      if (r.valid && r.status === 'valid' && r.chain[1]?.sha256 === summarize(this.anchors.factory).sha256) return { kind: 'camera', serial, cert, fingerprint };
      return undefined;
    }
    const cn = attribute(cert, '2.5.4.3');
    if (cn === undefined || !this.anchors.admins.includes(cn)) return undefined;
    const r = await verifyCertificate(cert, { roots: [this.anchors.operator], purpose: 'tls-client', ...crls });
    if (r.valid && r.status === 'valid' && r.chain.length === 2) return { kind: 'admin', name: cn, fingerprint };
    return undefined;
  }
}
