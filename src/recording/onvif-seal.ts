/**
 * Sealing an ONVIF export file (ONVIF Export File Format 26.06, "Signature" and "Repeated signing"): the signer's
 * key signs SHA-256 over every byte of the file, its own `sibo` payload zero, read as it is written (memory stays
 * bounded by one chunk). The `meta` box with the seal is the last box, so the file is written once; a DER ECDSA
 * signature whose length differs from the one reserved makes the seal be signed again, the file not rewritten.
 *
 * Repeated signing (`addSeal`): a copy of a sealed export with one more ProtectionSchemeInfoBox (`sinf`) at the
 * foot of `ipro`, protection_count left at 1, the sizes of `ipro` and `meta` grown by it; the new signature covers
 * the file with every earlier seal as it stands.
 */
import type { FileHandle } from 'node:fs/promises';
import { ErrorCodes, KeyframeError, MediaError } from '../errors.js';
import type { SignOptions } from '../keystore/types.js';
import { fileSource } from '../media/mp4/index.js';
import { ECDSA_WITH_SHA256, appendSealInstance, parseExportMeta, type BuiltMeta, type SealSpec } from '../media/mp4/oeff.js';
import type { OperatorIdentity } from '../pki/operator-identity.js';
import { issuerOf } from '../pki/_certs.js';
import { publicKeyObject, subjectOf } from '../pki/verify.js';
import { writeWithAtomic } from '../util/fs.js';
import { READ_CHUNK_BYTES } from './limits.js';
import { readLayout } from './onvif-layout.js';

/** Who seals: an operator-CA identity (`keyframe ca exporter-cert`), opened and checked. */
export type Sealer = Pick<OperatorIdentity, 'chain' | 'signStream'> & { readonly config: { readonly name: string } };

export interface SealScheme {
  readonly sign: SignOptions;
  /** The sigC payload; absent for the specification's default (RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 20). */
  readonly algorithm?: Uint8Array;
  readonly describe: string;
  /** The signature length to reserve first. */
  readonly length: number;
}

/** How the sealer's key signs, and the sigC that says so: RSA keys the default PSS, P-256 keys ecdsa-with-SHA256. */
export function sealScheme(sealer: Sealer): SealScheme {
  const leaf = sealer.chain[0];
  if (leaf === undefined) throw new KeyframeError(ErrorCodes.NOT_FOUND, `${sealer.config.name} has no certificate (chain.pem)`);
  const key = publicKeyObject(leaf);
  if (key.asymmetricKeyType === 'rsa') {
    const bytes = (key.asymmetricKeyDetails?.modulusLength ?? 0) / 8;
    return { sign: { rsaPadding: 'pss', pssSaltLength: 20 }, describe: 'RSASSA-PSS (SHA-256, MGF1-SHA-256, salt 20)', length: bytes };
  }
  if (key.asymmetricKeyType === 'ec') return { sign: { dsaEncoding: 'der' }, algorithm: ECDSA_WITH_SHA256, describe: 'ecdsa-with-SHA256', length: 71 };
  throw new KeyframeError(ErrorCodes.UNSUPPORTED, `${sealer.config.name}: a ${key.asymmetricKeyType ?? '?'} key cannot seal an ONVIF export`);
}

/** A DER ECDSA signature's length varies with its values; the seal is signed again until it fills its box. */
const MAX_SEAL_ATTEMPTS = 64;

/**
 * Writes `prefix()` (every box before `meta`) to `fh` while the sealer signs it, then the `meta` box `metaFor`
 * builds for the signature length, with the signature in it. Returns the bytes written.
 */
export async function writeSealed(fh: FileHandle, prefix: () => AsyncIterable<Uint8Array>, metaFor: (signatureLength: number) => BuiltMeta, sealer: Sealer, scheme: SealScheme): Promise<number> {
  let pos = 0;
  let prefixWritten = false;
  async function* input(meta: Uint8Array): AsyncGenerator<Uint8Array> {
    for await (const c of prefix()) {
      if (!prefixWritten) {
        await fh.write(c, 0, c.length, pos);
        pos += c.length;
      }
      yield c;
    }
    prefixWritten = true;
    yield meta;
  }
  let length = scheme.length;
  for (let attempt = 0; attempt < MAX_SEAL_ATTEMPTS; attempt++) {
    const { meta, signatureOffset } = metaFor(length);
    const signature = await sealer.signStream(input(meta), scheme.sign);
    if (signature.length !== length) {
      length = signature.length;
      continue;
    }
    meta.set(signature, signatureOffset);
    await fh.write(meta, 0, meta.length, pos);
    return pos + meta.length;
  }
  throw new KeyframeError(ErrorCodes.KEYSTORE, `the key store of ${sealer.config.name} gave signatures of changing length ${MAX_SEAL_ATTEMPTS} times: the seal cannot be written`);
}

export interface AddSealOptions {
  /** A sealed ONVIF export file. */
  readonly input: string;
  readonly out: string;
  readonly sealer: Sealer;
  /** The AdditionalUserInformationBox text (why this signing instance). */
  readonly userInformation?: string;
}

export interface AddSealResult {
  /** This seal's position among the signing instances (1 is the exporter's). */
  readonly index: number;
  readonly signer: { readonly subject: string; readonly issuer: string };
  readonly algorithm: string;
  readonly bytes: number;
}

/** Repeated signing: writes `out`, a copy of `input` with one more seal. The earlier seals are not checked here. */
export async function addSeal(options: AddSealOptions): Promise<AddSealResult> {
  const scheme = sealScheme(options.sealer);
  const leaf = options.sealer.chain[0];
  if (leaf === undefined) throw new KeyframeError(ErrorCodes.NOT_FOUND, `${options.sealer.config.name} has no certificate (chain.pem)`);
  const source = await fileSource(options.input);
  try {
    const layout = await readLayout(source);
    const metaBox = layout.meta;
    if (metaBox === undefined) throw new MediaError(`${options.input} has no file-level 'meta' box: not an ONVIF export file`);
    if (layout.after.length > 0) throw new MediaError(`${options.input}: '${layout.after[0]?.type ?? '?'}' follows the file-level 'meta' box; keyframe adds a seal only to a file that ends with it`);
    const meta = Uint8Array.from(await source.read(metaBox.offset, metaBox.size));
    const parsed = parseExportMeta(meta);
    const spec = (signatureLength: number): SealSpec => ({
      certificate: new Uint8Array(leaf.rawData),
      ...(scheme.algorithm !== undefined ? { algorithm: scheme.algorithm } : {}),
      ...(options.userInformation !== undefined ? { userInformation: options.userInformation } : {}),
      signatureLength,
    });
    appendSealInstance(meta, parsed, spec(scheme.length)); // refuses an unsealable meta before anything is written
    async function* prefix(): AsyncGenerator<Uint8Array> {
      for (let at = 0; at < metaBox!.offset; at += READ_CHUNK_BYTES) yield Uint8Array.from(await source.read(at, Math.min(READ_CHUNK_BYTES, metaBox!.offset - at)));
    }
    const bytes = await writeWithAtomic(options.out, (fh) => writeSealed(fh, prefix, (n) => appendSealInstance(meta, parsed, spec(n)), options.sealer, scheme));
    return { index: parsed.seals.length + 1, signer: { subject: subjectOf(leaf), issuer: issuerOf(leaf) }, algorithm: scheme.describe, bytes };
  } finally {
    await source.close();
  }
}
