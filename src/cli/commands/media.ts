/** `keyframe package` and `keyframe decrypt`: Common Encryption of H.264 into CMAF, and back. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { openBrowserSession } from '../../access/licence-client.js';
import { ErrorCodes, KeyframeError, MediaError, UsageError } from '../../errors.js';
import { readRoots } from '../../kms/open.js';
import { decryptChunks, emptyReport, encryptedKids } from '../../packager/decrypt.js';
import type { KeySet } from '../../packager/decrypt.js';
import { writeChunksAtomic } from '../../packager/files.js';
import { openInput } from '../../packager/input.js';
import { openEncryptedSource } from '../../packager/sources.js';
import { checkOutput } from '../../util/fs.js';
import { emptyStats, packageChunks } from '../../packager/package.js';
import { println } from '../context.js';
import type { CliContext } from '../context.js';
import { collect } from '../options.js';
import { readSecret } from '../secret-input.js';
import { toPem } from '../../pki/pem.js';

export function hex16(value: string, option: string): Buffer {
  if (!/^[0-9a-fA-F]{32}$/.test(value)) throw new UsageError(`${option} must be 32 hex digits (16 bytes)`);
  return Buffer.from(value, 'hex');
}

/** `--key HEX` (one key for every KID) or `--key KID:HEX` (repeatable). */
export function parseKeys(values: readonly string[]): KeySet {
  if (values.length === 0) throw new UsageError('--key is required');
  const plain = values.filter((v) => !v.includes(':'));
  if (plain.length > 0) {
    if (values.length > 1) throw new UsageError('give one --key HEX for every KID, or --key KID:HEX for each KID, not both');
    return { all: hex16(plain[0] ?? '', '--key') };
  }
  const byKid = new Map<string, Uint8Array>();
  for (const v of values) {
    const [kid = '', key = ''] = v.split(':');
    const k = hex16(kid, '--key KID').toString('hex');
    if (byKid.has(k)) throw new UsageError(`--key: KID ${k} given twice`);
    byKid.set(k, hex16(key, '--key KEY'));
  }
  return { byKid };
}

export function registerMediaCommands(program: Command, ctx: CliContext): void {
  program
    .command('package')
    .description('H.264 (Annex-B .h264 or .mp4) → CMAF fragmented MP4 with Common Encryption, one fragment per GOP')
    .argument('<IN>', 'Annex-B H.264 stream or MP4 file')
    .requiredOption('--out <OUT.mp4>', 'output file')
    .option('--scheme <SCHEME>', 'cbcs (default), cenc, or none (clear CMAF)', 'cbcs')
    .option('--key <HEX>', 'AES-128 content key, 32 hex digits')
    .option('--kid <HEX>', 'key ID, 32 hex digits')
    .option('--fps <N>', 'frame rate of an Annex-B stream whose SPS carries none')
    .option('--force', 'replace OUT if it exists (never an input)')
    .action(async (inPath: string, o: { out: string; scheme: string; key?: string; kid?: string; fps?: string; force?: boolean }) => {
      if (o.scheme !== 'cbcs' && o.scheme !== 'cenc' && o.scheme !== 'none') throw new UsageError(`--scheme: "${o.scheme}" is not one of cbcs, cenc, none`);
      const scheme = o.scheme;
      let keyFor: (() => { kid: Buffer; key: Buffer }) | undefined;
      if (scheme !== 'none') {
        if (o.key === undefined || o.kid === undefined) throw new UsageError('--key and --kid are required to encrypt (or --scheme none)');
        const k = { key: hex16(o.key, '--key'), kid: hex16(o.kid, '--kid') };
        keyFor = () => k;
      }
      const fps = o.fps !== undefined ? Number(o.fps) : undefined;
      if (fps !== undefined && !(fps > 0 && fps <= 1000)) throw new UsageError('--fps must be a number between 0 and 1000');
      const out = await checkOutput(o.out, { kind: 'file', inputs: [inPath], force: o.force === true });
      const input = await openInput(resolve(inPath), fps !== undefined ? { fps } : {});
      const stats = emptyStats();
      try {
        await writeChunksAtomic(out.path, packageChunks(input, { scheme, ...(keyFor !== undefined ? { keyFor } : {}) }, stats));
      } finally {
        await input.close();
      }
      const cut = input.end?.cut;
      if (cut !== undefined) {
        ctx.stderr.write(`keyframe: warning: ${resolve(inPath)} ends inside picture ${cut.picture}, which is cut (${cut.reason}): it was dropped; the output ends with picture ${cut.picture - 1}\n`);
      }
      const overhead = stats.outputBytes - stats.sampleBytes;
      println(ctx.stdout, `packaged ${stats.samples} samples in ${stats.fragments} fragments (${scheme}) → ${out.path}`);
      println(ctx.stdout, `  ${stats.outputBytes} bytes: ${stats.sampleBytes} of video, ${overhead} of boxes (${((100 * overhead) / Math.max(1, stats.sampleBytes)).toFixed(3)} %)`);
      if (scheme !== 'none') println(ctx.stdout, `  KID ${stats.kids.join(', ')}`);
    });

  program
    .command('decrypt')
    .description('Common Encryption MP4 (ours, or another packager\'s), a recording directory or an evidence bundle → one clear CMAF MP4')
    .argument('<IN>', 'encrypted MP4, recording directory, or evidence bundle')
    .requiredOption('--out <OUT.mp4>', 'output file')
    .option('--key <HEX|KID:HEX>', 'one key for every KID, or KID:KEY (repeatable)', collect, [])
    .option('--licence <URL>', "instead of --key: the KMS's browser listener (https://host:port); logs in as --user and asks for exactly the keys IN needs")
    .option('--user <NAME>', 'the KMS account to log in with (--licence); its password is read from the terminal or one line of stdin')
    .option('--kms-ca <FILE>', 'the operator CA certificate the KMS must chain to (--licence; default $KEYFRAME_KMS_CA)')
    .option('--totp', 'also read a TOTP code, after the password (--licence)', false)
    .option('--force', 'replace OUT if it exists (never an input)')
    .action(async (inPath: string, o: { out: string; key: string[]; licence?: string; user?: string; kmsCa?: string; totp: boolean; force?: boolean }) => {
      let licence: LicenceOptions | undefined;
      if (o.licence !== undefined) {
        if (o.key.length > 0) throw new UsageError('--licence and --key are exclusive: give the keys, or ask the KMS for them');
        if (new URL(o.licence).protocol !== 'https:') throw new UsageError(`--licence must be an https URL (the KMS's browser listener): ${o.licence}`);
        if (o.user === undefined) throw new UsageError('--licence needs --user NAME: the account to log in with');
        const caFile = o.kmsCa ?? process.env['KEYFRAME_KMS_CA'];
        if (caFile === undefined || caFile === '') throw new UsageError('--kms-ca FILE (or $KEYFRAME_KMS_CA) is required with --licence: the operator CA certificate the KMS must chain to');
        const ca = readRoots(resolve(caFile)).map((c) => toPem(c.rawData, 'CERTIFICATE'));
        licence = { url: o.licence, ca, user: o.user, totp: o.totp };
      } else {
        if (o.user !== undefined || o.kmsCa !== undefined || o.totp) throw new UsageError('--user, --kms-ca and --totp go with --licence URL');
        if (o.key.length === 0) throw new UsageError('--key or --licence is required');
      }
      let keys = licence === undefined ? parseKeys(o.key) : undefined;
      const out = await checkOutput(o.out, { kind: 'file', inputs: [inPath], directoryInputs: true, force: o.force === true });
      const input = await openEncryptedSource(resolve(inPath));
      const report = emptyReport();
      let kidCount = 0;
      try {
        if (licence !== undefined) {
          const kids = await encryptedKids(input.source);
          if (kids.length === 0) throw new MediaError('the input is not encrypted (no protection scheme in its sample entry): there is nothing to decrypt');
          kidCount = kids.length;
          keys = await licenceKeys(licence, kids, ctx);
        }
        await writeChunksAtomic(out.path, decryptChunks(input.source, keys as KeySet, report));
      } finally {
        await input.close();
      }
      const from = input.kind === 'mp4' ? '' : ` (${input.kind === 'recording' ? 'recording' : 'evidence bundle'}: ${input.fragmentFiles} fragment files)`;
      println(ctx.stdout, `decrypted ${report.samples} samples in ${report.fragments} fragments${from} → ${out.path}`);
      if (licence !== undefined) println(ctx.stdout, `  keys: ${kidCount} from the KMS at ${new URL(licence.url).origin}, licensed to ${licence.user}`);
      for (const k of report.kids) {
        println(ctx.stdout, `  KID ${k.kid}: ${k.checked ? 'key verified against the key check in the file' : 'key NOT verifiable (the file carries no key check): the output is the clear video only if the key is right'}`);
      }
    });
}

interface LicenceOptions {
  readonly url: string;
  /** The operator CA, PEM. */
  readonly ca: readonly string[];
  readonly user: string;
  readonly totp: boolean;
}

/** A licence asks for at most this many KIDs (the KMS's bound). */
const LICENCE_BATCH = 64;

/**
 * The keys of exactly `kids` (hex) from the KMS: the password (and TOTP code) read, a session opened, a licence asked
 * for, the session closed. Every KID must be granted: a refusal, or any KID not granted, is an error naming the
 * KIDs, before anything is decrypted.
 */
async function licenceKeys(o: LicenceOptions, kids: readonly string[], ctx: CliContext): Promise<KeySet> {
  const password = await readSecret(`Password for ${o.user}: `, ctx, { what: `password for ${o.user}` });
  const code = o.totp ? await readSecret(`TOTP code for ${o.user}: `, ctx, { what: `TOTP code for ${o.user}` }) : undefined;
  const session = await openBrowserSession(o.url, o.ca, o.user, password, code);
  const got = new Map<string, Uint8Array>();
  try {
    for (let i = 0; i < kids.length; i += LICENCE_BATCH) {
      const batch = kids.slice(i, i + LICENCE_BATCH);
      try {
        const answer = await session.licence(batch.map((k) => Buffer.from(k, 'hex')));
        for (const k of batch) {
          const key = answer.get(k);
          if (key !== undefined) got.set(k, key);
        }
      } catch (e) {
        // one batch of several refused entirely: its KIDs are not granted (reported below with the others)
        if (!(kids.length > LICENCE_BATCH && e instanceof KeyframeError && e.code === ErrorCodes.FORBIDDEN)) throw e;
      }
    }
  } finally {
    try {
      await session.logout();
    } catch (e) {
      ctx.stderr.write(`keyframe: warning: logging out of the KMS failed (${e instanceof Error ? e.message : String(e)}): the session ends by itself when idle\n`);
    }
  }
  if (got.size === 0) throw new KeyframeError(ErrorCodes.FORBIDDEN, 'licence: refused');
  const missing = kids.filter((k) => !got.has(k));
  if (missing.length > 0) throw new KeyframeError(ErrorCodes.FORBIDDEN, `licence: ${missing.length} of ${kids.length} KIDs not granted to ${o.user} (${missing.join(', ')}): nothing decrypted`);
  return { byKid: got };
}
