/**
 * The NVR's time-stamping authority (issue 12 §2 "Trusted time"; ARCHITECTURE.md: "Time-stamping authority (the
 * NVR)"): an operator-CA identity whose only, critical extended key usage is id-kp-timeStamping
 * (src/pki/operator-identity.ts kind 'tsa', as `keyframe ca tsa-cert` makes), its key in its key store. `nvr init`
 * creates it in DIR/tsa; `nvr serve` opens it as a localStamper (src/tsp/stamper.ts), which checks the identity
 * (certificate over the store's key, purpose, chain to the operator CA) and verifies every token it issues.
 */
import type { KeyStore } from '../keystore/types.js';
import type { CaStore } from '../pki/ca-store.js';
import { createOperatorIdentity } from '../pki/operator-identity.js';
import type { X509Certificate } from '../pki/x509.js';
import { localStamper, type Stamper } from '../tsp/stamper.js';

export const NVR_TSA_DIR = 'tsa';

/** Creates the NVR's TSA identity in `out` (key generated in its key store, default file:OUT/keys). */
export async function createNvrTsa(o: { readonly out: string; readonly ca: CaStore; readonly caKeyStore: KeyStore; readonly name: string; readonly keystore?: string }): Promise<X509Certificate> {
  const r = await createOperatorIdentity({ kind: 'tsa', out: o.out, ca: o.ca, caKeyStore: o.caKeyStore, name: o.name, ...(o.keystore !== undefined ? { keystore: o.keystore } : {}) });
  return r.certificate;
}

/** Opens the NVR's TSA for stamping. */
export async function openNvrStamper(dir: string, keystore?: string): Promise<Stamper> {
  return localStamper(dir, { ...(keystore !== undefined ? { keystore } : {}) });
}
