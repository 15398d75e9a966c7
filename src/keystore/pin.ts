/** Reads a PIN or passphrase from where a key store spec says it is; the secret itself is never in argv. */
import { readFileSync, statSync } from 'node:fs';
import { ErrorCodes, KeyStoreError, errnoCode } from '../errors.js';
import type { PinSource } from './spec.js';

export function describePinSource(source: PinSource): string {
  return 'env' in source ? `environment variable ${source.env}` : `file ${source.file}`;
}

export function readPin(source: PinSource): string {
  let pin: string | undefined;
  if ('env' in source) {
    pin = process.env[source.env];
    if (pin === undefined || pin === '') {
      throw new KeyStoreError(ErrorCodes.KEYSTORE_AUTH, `no key store PIN or passphrase: set ${source.env}, or name a source with ;pin-env=VAR or ;pin-file=PATH`);
    }
  } else {
    try {
      const st = statSync(source.file);
      if ((st.mode & 0o077) !== 0) {
        throw new KeyStoreError(ErrorCodes.KEYSTORE_AUTH, `PIN file ${source.file} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
      }
      pin = readFileSync(source.file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      if (e instanceof KeyStoreError) throw e;
      if (errnoCode(e) === 'ENOENT') throw new KeyStoreError(ErrorCodes.KEYSTORE_AUTH, `PIN file not found: ${source.file}`);
      throw new KeyStoreError(ErrorCodes.KEYSTORE_AUTH, `cannot read PIN file ${source.file}`);
    }
    if (pin === '') throw new KeyStoreError(ErrorCodes.KEYSTORE_AUTH, `PIN file ${source.file} is empty`);
  }
  return pin;
}
