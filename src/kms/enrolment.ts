/**
 * Camera enrolment at the KMS: a camera, authenticated by its device certificate on its connection, gets K_i by
 * authenticated ECDH in the KMS's key store, and fresh sub-keys, sealed in the database and sent to the camera
 * under K_i. One enrolment of a camera at a time: parallel ones would race on its K_i label in the key store.
 * Also opens a camera's sealed sub-keys for the groups it joins.
 */
import { createHash } from 'node:crypto';
import { ErrorCodes, GroupKeyError, NotFoundError } from '../errors.js';
import { derivePairwiseKey, issueSubkeys, subkeyConfirmation } from '../groupkey/enrol.js';
import type { PairIdentity } from '../groupkey/enrol.js';
import type { Subkeys } from '../groupkey/hardened/kdf.js';
import type { PaperKms } from '../groupkey/paper/kms.js';
import { certsToPem } from '../pki/pem.js';
import type { X509Certificate, X509Crl } from '../pki/x509.js';
import { paperKey } from './keys.js';
import type { KmsServiceOptions } from './service.js';

export interface EnrolResult {
  readonly generation: number;
  readonly blob: Buffer;
  readonly confirmation: Buffer;
  readonly kmsChainPem: string;
}

/** The service's key store, identity, trust anchors, database and sealer, and what enrolment needs besides. */
export interface EnrolmentOptions extends Pick<KmsServiceOptions, 'db' | 'store' | 'sealer' | 'identityLabel' | 'identityChain' | 'trust'> {
  readonly now: () => number;
  readonly log: (event: string, detail: Record<string, unknown>) => void;
  /** Learns each enrolled camera's key for the paper schemes. */
  readonly paper: PaperKms;
  /** The groups a camera takes part in: it may not enrol again while there are any. */
  readonly groupsWith: (serial: string) => string[];
}

export class Enrolment {
  private readonly o: EnrolmentOptions;
  private readonly enrolling = new Map<string, Promise<void>>();
  /** The CRLs in force (reloaded: setCrls). */
  private crls: readonly X509Crl[] | undefined;

  constructor(o: EnrolmentOptions) {
    this.o = o;
    this.crls = o.trust.crls;
  }

  /** New CRLs for the check of a camera's certificate. */
  setCrls(crls: readonly X509Crl[]): void {
    this.crls = crls;
  }

  /**
   * A camera enrols: K_i by authenticated ECDH, fresh sub-keys sealed in the database and sent to the camera under
   * K_i. Refused while the camera is in a group (its leaf holds the old sub-key: remove it first).
   */
  enrol(serial: string, cert: X509Certificate): Promise<EnrolResult> {
    const previous = this.enrolling.get(serial) ?? Promise.resolve();
    const run = previous.then(
      () => this.enrolNow(serial, cert),
      () => this.enrolNow(serial, cert),
    );
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.enrolling.set(serial, settled);
    void settled.then(() => {
      if (this.enrolling.get(serial) === settled) this.enrolling.delete(serial);
    });
    return run;
  }

  private async enrolNow(serial: string, cert: X509Certificate): Promise<EnrolResult> {
    const { db, store, sealer } = this.o;
    const kmsCert = this.o.identityChain[0] as X509Certificate;
    const pair: PairIdentity = { kms: kmsCert, camera: cert };
    const inGroups = this.o.groupsWith(serial);
    if (inGroups.length > 0) throw new GroupKeyError(ErrorCodes.GROUPKEY_REFUSED, `camera ${serial} is in group(s) ${inGroups.join(', ')}: remove it before it enrols again`);
    const label = await derivePairwiseKey(store, this.o.identityLabel, pair, 'kms', { roots: [this.o.trust.root], intermediates: [this.o.trust.factory], ...(this.crls !== undefined ? { crls: this.crls } : {}) }, { replace: true });
    const generation = (db.camera(serial)?.generation ?? 0) + 1;
    const { subkeys, blob } = await issueSubkeys(store, label, pair, generation);
    const sealed = await sealer.sealJson('subkeys', serial, { wrap: Buffer.from(subkeys.wrap).toString('hex'), auth: Buffer.from(subkeys.auth).toString('hex') });
    db.tx(() => {
      db.putCamera({ serial, cert: Buffer.from(cert.rawData), fingerprint: createHash('sha256').update(new Uint8Array(cert.rawData)).digest('hex'), generation, subkeys: sealed, enrolled_at: this.o.now() });
      db.audit(serial, 'enrol', { generation });
    });
    this.o.paper.registerCamera(serial, paperKey(subkeys));
    this.o.log('enrol', { serial, generation });
    return { generation, blob, confirmation: subkeyConfirmation(subkeys, pair), kmsChainPem: certsToPem(this.o.identityChain) };
  }

  /** An enrolled camera's sub-keys, opened from the database. */
  async subkeysOf(serial: string): Promise<Subkeys> {
    const row = this.o.db.camera(serial);
    if (row === undefined) throw new NotFoundError(`camera ${serial} is not enrolled`);
    const s = await this.o.sealer.openJson<{ wrap: string; auth: string }>('subkeys', serial, row.subkeys);
    return { wrap: Uint8Array.from(Buffer.from(s.wrap, 'hex')), auth: Uint8Array.from(Buffer.from(s.auth, 'hex')) };
  }
}
