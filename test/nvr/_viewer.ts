/**
 * An NVR with its viewers' listener for tests: a site (test/nvr/_setup.ts), a KMS identity from its operator CA whose
 * key (in its key store) signs access tokens with the KMS's own signing code, a rogue identity that signs tokens the
 * NVR must refuse, and the NVR configured to take the KMS's tokens as "nvr-1" (without the KMS's list of ended
 * sessions: there is no KMS here; test/system/access-playback.test.ts has one).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { AclEntry } from '../../src/access/acl.js';
import { signAccessToken } from '../../src/access/token.js';
import { auditOrigin } from '../../src/audit/export.js';
import { openKeyStore } from '../../src/keystore/open.js';
import { createOperatorIdentity } from '../../src/pki/operator-identity.js';
import { toPem } from '../../src/pki/pem.js';
import { createSite } from '../../src/pki/site.js';
import { loadTlsIdentity } from '../../src/pki/tls.js';
import { PIN_ENV, makeNvrSite } from './_setup.js';
import type { NvrSite } from './_setup.js';

export interface ViewerSite {
  readonly site: NvrSite;
  /** The operator CA, PEM: what a viewer trusts the NVR by. */
  readonly ca: string;
  /** An access token for `aud` (default nvr-1) with `acl`, signed by the KMS (or by the rogue identity). */
  sign(claims: { aud?: string; sub?: string; acl: AclEntry[]; exp?: number }, rogue?: boolean): Promise<string>;
}

export async function makeViewerSite(serials: readonly string[], extra: Record<string, unknown> = {}): Promise<ViewerSite> {
  const site = await makeNvrSite(serials);
  const spec = (dir: string): string => `file:${dir};pin-env=${PIN_ENV}`;
  const kms = await createSite({ out: join(site.work, 'kms'), ca: site.ca, caKeyStore: site.caStore, name: 'localhost', altNames: ['localhost', '127.0.0.1'], keystore: spec(join(site.work, 'kms', 'keys')) });
  await createSite({ out: join(site.work, 'rogue'), ca: site.ca, caKeyStore: site.caStore, name: 'rogue', altNames: ['localhost'], keystore: spec(join(site.work, 'rogue', 'keys')) });
  const signer = async (dir: string): Promise<(data: Uint8Array) => Promise<Uint8Array>> => {
    const id = loadTlsIdentity(dir);
    const store = await openKeyStore(id.keystore);
    return (data) => store.sign(id.keyLabel, data, { dsaEncoding: 'ieee-p1363' });
  };
  const kmsSign = await signer(join(site.work, 'kms'));
  const rogueSign = await signer(join(site.work, 'rogue'));
  // the NVR's exporter identity: bundles asked for through the viewers' listener are signed by it
  await createOperatorIdentity({ kind: 'exporter', out: join(site.work, 'exporter'), ca: site.ca, caKeyStore: site.caStore, name: 'NVR-1 exporter', keystore: spec(join(site.work, 'exporter', 'keys')) });
  site.writeConfig({ viewer: { host: '127.0.0.1', port: 0 }, kms: { chain: 'kms/chain.pem', name: 'nvr-1', licence: 'https://127.0.0.1:8444/v1/licence', revocations: false }, exporter: 'exporter', ...extra });
  return {
    site,
    ca: toPem(site.ca.certs.operator.rawData, 'CERTIFICATE'),
    sign: async (c, rogue = false) => {
      const iat = Math.floor(Date.now() / 1000);
      return signAccessToken({ iss: auditOrigin(kms.certificate), sub: c.sub ?? 'ivan', aud: c.aud ?? 'nvr-1', sid: 'c2Vzc2lvbi0xMjM0NTY3OA', role: 'investigator', iat, exp: c.exp ?? iat + 120, jti: randomBytes(16).toString('base64url'), acl: c.acl }, rogue ? rogueSign : kmsSign);
    },
  };
}
