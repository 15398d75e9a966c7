/** Signing as the camera does: a device directory's key, chain and counter behind a StreamSigner. */
import { createHash } from 'node:crypto';
import { ErrorCodes, KeyframeError } from '../errors.js';
import { splitAnnexB, writeAnnexB } from '../media/h264/index.js';
import type { Device } from '../pki/device.js';
import { certsToPem } from '../pki/pem.js';
import type { UnitCounter } from './counter.js';
import { openUnitCounter } from './counter-file.js';
import { OID_ECDSA_SHA256, OID_RSA_SHA256 } from './sei.js';
import { StreamSigner, type SignerStats } from './signer.js';

export interface DeviceSignOptions {
  /** Capture time of the first frame; default now. */
  readonly start?: Date;
  readonly fps?: number;
  readonly maxUnitSeconds?: number;
  /** ONVIF mode (default 'hash-list'; see SignerOptions). */
  readonly onvifMode?: 'hash-list' | 'low-bitrate';
  /** The camera's unit counter (default DEV/counter.json). */
  readonly counter?: UnitCounter;
}

/** A StreamSigner for an opened device: its key store signs, DEV/chain.pem goes into the certificate SEI. */
export async function deviceSigner(device: Device, options: DeviceSignOptions = {}): Promise<StreamSigner> {
  const leaf = device.chain[0];
  if (leaf === undefined) throw new KeyframeError(ErrorCodes.NOT_FOUND, `device ${device.config.serial} has no certificate (DEV/chain.pem): provision it first`);
  const label = device.config.keyLabel;
  const spki = (await device.store.getPublicKey(label)).export({ format: 'der', type: 'spki' });
  if (!Buffer.from(leaf.publicKey.rawData).equals(spki)) throw new KeyframeError(ErrorCodes.CERT_MISMATCH, 'the device certificate does not match the device key');
  const { counter = openUnitCounter(device.dir), ...rest } = options;
  return new StreamSigner({
    // ECDSA straight from the store as r‖s (a PKCS#11 token returns it so natively); ONVIF's SEIs get it as DER
    sign: (data) => device.store.sign(label, data, { dsaEncoding: 'ieee-p1363' }),
    signatureEncoding: 'ieee-p1363',
    signatureOid: device.config.algorithm === 'rsa-2048' ? OID_RSA_SHA256 : OID_ECDSA_SHA256,
    chainPem: certsToPem(device.chain),
    serial: device.config.serial,
    kid: createHash('sha256').update(spki).digest('hex'),
    reserveCounter: () => counter.reserve(),
    ...rest,
  });
}

/** Signs a whole Annex-B stream in memory; returns the signed stream. */
export async function signAnnexB(device: Device, data: Uint8Array, options: DeviceSignOptions = {}): Promise<{ output: Uint8Array; stats: SignerStats }> {
  const signer = await deviceSigner(device, options);
  const out: Uint8Array[] = [];
  for (const nal of splitAnnexB(data)) out.push(...(await signer.push(nal)));
  out.push(...(await signer.finish()));
  return { output: writeAnnexB(out), stats: signer.stats };
}
