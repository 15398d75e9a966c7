/** Opens the key store a spec names. */
import { describePinSource, readPin } from './pin.js';
import { SoftwareKeyStore } from './software.js';
import type { SoftwareKeyStoreOptions } from './software.js';
import { parseKeyStoreSpec } from './spec.js';
import type { KeyStoreSpec } from './spec.js';
import type { KeyStore } from './types.js';

export interface OpenKeyStoreOptions {
  /** Create a software store that does not exist yet (only when making a new identity); default: refuse. */
  readonly create?: boolean;
  /** Passed to the software backend when it creates a new store. */
  readonly software?: SoftwareKeyStoreOptions;
}

export async function openKeyStore(spec: KeyStoreSpec | string, options: OpenKeyStoreOptions = {}): Promise<KeyStore> {
  const parsed = typeof spec === 'string' ? parseKeyStoreSpec(spec) : spec;
  const pin = readPin(parsed.pin);
  if (parsed.kind === 'file') return SoftwareKeyStore.open(parsed.dir, pin, { ...options.software, ...(options.create === true ? { create: true } : {}) });
  const { Pkcs11KeyStore } = await import('./pkcs11.js');
  return Pkcs11KeyStore.open({ module: parsed.module, token: parsed.token, pin });
}

export { describePinSource };
