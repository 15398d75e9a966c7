/**
 * The KMS's state at rest: its SQLite database and the sealing key ('kms-state') in its key store, opened
 * together and checked against each other before anything is served.
 *
 * - A new KMS (`kms init`, or `kms serve --new-database`) creates the database and, when the key store has none
 *   yet, the sealing key; the database then records a check value sealed under that key.
 * - Every later start opens the database as it is (never a new one over a missing or damaged file), finds the
 *   sealing key (never a new one for a missing key) and opens the check value with it: a deleted key, another
 *   KMS's key store or another KMS's database is named, not discovered later as "unwrap failed".
 * - A database of the first release has no check value: the key must open its sealed rows, then the check value
 *   is added.
 */
import { ErrorCodes, KeyframeError, NotFoundError } from '../errors.js';
import type { KeyStore } from '../keystore/types.js';
import { KmsDb } from './db.js';
import { STATE_KEY_LABEL, Sealer } from './seal.js';

const CHECK = Buffer.from('keyframe/v1 kms-state check');

export interface KmsState {
  readonly db: KmsDb;
  readonly sealer: Sealer;
}

export class KmsStateError extends KeyframeError {
  constructor(message: string) {
    super(ErrorCodes.KEYSTORE, message);
    this.name = 'KmsStateError';
  }
}

export async function openKmsState(o: { readonly database: string; readonly store: KeyStore; readonly create?: boolean }): Promise<KmsState> {
  let db: KmsDb;
  try {
    db = KmsDb.open(o.database, o.create === true ? { create: true } : {});
  } catch (e) {
    if (!(e instanceof NotFoundError) || o.create === true) throw e;
    const held = (await o.store.info(STATE_KEY_LABEL)) !== undefined;
    throw new NotFoundError(
      `KMS database not found: ${o.database}${held ? ' — but the key store holds this KMS\'s sealing key, so a database existed: restore it from a backup' : ': make a new KMS with keyframe kms init'} (kms serve --new-database starts an empty one here)`,
    );
  }
  try {
    const hasKey = (await o.store.info(STATE_KEY_LABEL)) !== undefined;
    const check = db.meta('seal-check');
    if (!hasKey && (check !== undefined || db.holdsState)) {
      throw new KmsStateError(`${o.database} holds sealed state but the key store ${o.store.description} has no '${STATE_KEY_LABEL}' key: it was deleted, or this is not this KMS's key store; restore the key store (a new key cannot open the database)`);
    }
    const sealer = await Sealer.open(o.store, { create: true });
    if (check !== undefined) {
      const opened = await sealer.open('check', 'kms', Buffer.from(check, 'base64')).catch(() => undefined);
      if (opened === undefined || !opened.equals(CHECK)) {
        throw new KmsStateError(`the '${STATE_KEY_LABEL}' key in ${o.store.description} does not open ${o.database}: the database belongs to another KMS, or the key store does`);
      }
    } else {
      // a new database, or one of the first release: the key must open what is sealed in it before it is bound
      const camera = db.cameras()[0];
      if (camera !== undefined) {
        const ok = await sealer.open('subkeys', camera.serial, camera.subkeys).then(
          () => true,
          () => false,
        );
        if (!ok) throw new KmsStateError(`the '${STATE_KEY_LABEL}' key in ${o.store.description} does not open ${o.database}: the database belongs to another KMS, or the key store does`);
      }
      db.setMeta('seal-check', (await sealer.seal('check', 'kms', CHECK)).toString('base64'));
    }
    return { db, sealer };
  } catch (e) {
    db.close();
    throw e;
  }
}
