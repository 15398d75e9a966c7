/**
 * The shared way to create an identity directory (device, site): a key pair generated in a key store, then
 * whatever the caller adds (configuration, certificate), all appearing at `dir` at once or not at all. When the
 * store is the default one inside `dir` (`file:DIR/keys`) it is built inside the temporary directory; a key
 * made in an external store (PKCS#11) is destroyed again if anything fails.
 */
import { join, resolve } from 'node:path';
import { ErrorCodes, PkiError } from '../errors.js';
import { openKeyStore } from '../keystore/open.js';
import { parseKeyStoreSpec } from '../keystore/spec.js';
import type { KeyStoreSpec } from '../keystore/spec.js';
import type { KeyPairAlgorithm, KeyStore } from '../keystore/types.js';
import { buildDirAtomic } from '../util/fs.js';

export interface KeyedDirContext {
  /** The temporary directory that becomes `dir`. */
  readonly tmp: string;
  /** The open store holding the new key. */
  readonly store: KeyStore;
  /** The spec to record (final paths). */
  readonly finalSpec: KeyStoreSpec;
  /** The spec the open store was opened with (temporary paths while building). */
  readonly workSpec: KeyStoreSpec;
}

export async function buildKeyedDir<T>(
  dir: string,
  keystore: string | undefined,
  keyLabel: string,
  algorithm: KeyPairAlgorithm,
  fill: (ctx: KeyedDirContext) => Promise<T>,
  options: { readonly replace?: boolean } = {},
): Promise<T> {
  const finalSpec = parseKeyStoreSpec(keystore ?? `file:${join(dir, 'keys')}`);
  return buildDirAtomic(dir, async (tmp) => {
    const insideDir = finalSpec.kind === 'file' && finalSpec.dir === resolve(dir, 'keys');
    const workSpec: KeyStoreSpec = insideDir ? { ...finalSpec, dir: join(tmp, 'keys') } : finalSpec;
    const store = await openKeyStore(workSpec, { create: true });
    let created = false;
    try {
      if ((await store.info(keyLabel)) !== undefined) {
        throw new PkiError(ErrorCodes.KEY_EXISTS, `the key store already holds a key "${keyLabel}": choose another --key-label or an empty store`);
      }
      await store.generateKeyPair(keyLabel, algorithm);
      created = true;
      return await fill({ tmp, store, finalSpec, workSpec });
    } catch (e) {
      if (created && !insideDir) await store.deleteKey(keyLabel).catch(() => undefined);
      throw e;
    } finally {
      await store.close();
    }
  }, options);
}
