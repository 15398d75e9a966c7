/** Opening a camera's group-key agent (GroupKeyCamera) from its device directory, with mutual TLS to the KMS. */
import { openKeyStore } from '../keystore/open.js';
import { servername } from '../kms/open.js';
import { loadTlsIdentity, tlsClientOptions } from '../pki/tls.js';
import type { X509Certificate } from '../pki/x509.js';
import { GroupKeyCamera } from './group-key.js';

/** A camera's agent from its device directory; `kmsRoots` are the operator root(s) it pins for the KMS. */
export async function openCameraAgent(o: { url: string; deviceDir: string; stateDir: string; kmsRoots: readonly X509Certificate[]; keystore?: string; trustName?: string }): Promise<{ camera: GroupKeyCamera; close(): Promise<void> }> {
  const identity = loadTlsIdentity(o.deviceDir, o.keystore);
  const store = await openKeyStore(identity.keystore);
  try {
    const tls = await tlsClientOptions(identity, { roots: o.kmsRoots }, servername(o.url));
    const camera = new GroupKeyCamera({ url: o.url, stateDir: o.stateDir, store, deviceKeyLabel: identity.keyLabel, chain: identity.chain, tls, kmsRoots: o.kmsRoots, ...(o.trustName !== undefined ? { trustName: o.trustName } : {}) });
    return {
      camera,
      close: async () => {
        camera.close();
        await store.close();
      },
    };
  } catch (e) {
    await store.close();
    throw e;
  }
}
