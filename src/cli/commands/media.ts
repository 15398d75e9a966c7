/** `keyframe package` and `keyframe decrypt`: Common Encryption of H.264 into CMAF, and back. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { UsageError } from '../../errors.js';
import { decryptChunks, emptyReport } from '../../packager/decrypt.js';
import type { KeySet } from '../../packager/decrypt.js';
import { writeChunksAtomic } from '../../packager/files.js';
import { openInput } from '../../packager/input.js';
import { openEncryptedSource } from '../../packager/sources.js';
import { checkOutput } from '../../util/fs.js';
import { emptyStats, packageChunks } from '../../packager/package.js';
import { println } from '../context.js';
import type { CliContext } from '../context.js';
import { collect } from '../options.js';

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
    .option('--force', 'replace OUT if it exists (never an input)')
    .action(async (inPath: string, o: { out: string; key: string[]; force?: boolean }) => {
      const keys = parseKeys(o.key);
      const out = await checkOutput(o.out, { kind: 'file', inputs: [inPath], directoryInputs: true, force: o.force === true });
      const input = await openEncryptedSource(resolve(inPath));
      const report = emptyReport();
      try {
        await writeChunksAtomic(out.path, decryptChunks(input.source, keys, report));
      } finally {
        await input.close();
      }
      const from = input.kind === 'mp4' ? '' : ` (${input.kind === 'recording' ? 'recording' : 'evidence bundle'}: ${input.fragmentFiles} fragment files)`;
      println(ctx.stdout, `decrypted ${report.samples} samples in ${report.fragments} fragments${from} → ${out.path}`);
      for (const k of report.kids) {
        println(ctx.stdout, `  KID ${k.kid}: ${k.checked ? 'key verified against the key check in the file' : 'key NOT verifiable (the file carries no key check): the output is the clear video only if the key is right'}`);
      }
    });
}
