/**
 * Shared set-up for the signing suites: a factory CA with provisioned cameras (software key stores), signing of
 * real x264 clips through a device, and a unit-level model of a signed stream for tampering at the access-unit
 * level (never synthetic NAL units).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Command, CommanderError } from 'commander';
import { registerSigningCommands } from '../../src/cli/commands/signing.js';
import type { CliContext } from '../../src/cli/context.js';
import { isKeyframeError } from '../../src/errors.js';
import type { KeyStore } from '../../src/keystore/types.js';
import { AccessUnitAssembler, isVcl, nalType, splitAnnexB, writeAnnexB } from '../../src/media/h264/index.js';
import { initCa } from '../../src/pki/ca.js';
import { CaStore } from '../../src/pki/ca-store.js';
import { openDevice, provisionDevice } from '../../src/pki/device.js';
import { createOperatorIdentity, type OperatorIdentityKind } from '../../src/pki/operator-identity.js';
import { parseCertificates } from '../../src/pki/pem.js';
import type { X509Certificate } from '../../src/pki/x509.js';
import { signAnnexB, type DeviceSignOptions } from '../../src/signing/device.js';
import { parseSigningSei } from '../../src/signing/sei.js';
import { verifyNals, type VerifierOptions } from '../../src/signing/verifier.js';
import type { VerificationReport } from '../../src/signing/report.js';

export const PIN_ENV = 'KF_TEST_SIGNING_PIN';

export interface Pki {
  readonly work: string;
  readonly caDir: string;
  readonly ca: CaStore;
  readonly caStore: KeyStore;
  readonly root: X509Certificate;
  readonly rootPath: string;
  /** The operator CA (exporters, TSAs) and its file. */
  readonly operator: X509Certificate;
  readonly operatorPath: string;
  spec(dir: string): string;
  provision(serial: string, extra?: { days?: number; now?: Date }): Promise<string>;
  /** An operator-CA identity directory: an evidence exporter or a TSA. */
  identity(kind: OperatorIdentityKind, name: string, extra?: { days?: number; now?: Date }): Promise<string>;
}

export async function makePki(org = 'Acme Cameras', work = mkdtempSync(join(tmpdir(), 'kf-sign-')), now?: Date): Promise<Pki> {
  process.env[PIN_ENV] ??= 'signing test passphrase';
  const caDir = join(work, `ca-${Math.random().toString(36).slice(2, 8)}`);
  const spec = (dir: string): string => `file:${dir};pin-env=${PIN_ENV}`;
  await initCa({ dir: caDir, keystore: spec(join(caDir, 'keys')), org, ...(now !== undefined ? { now } : {}) });
  const ca = await CaStore.open(caDir);
  const caStore = await ca.openKeyStore();
  const rootPath = join(caDir, 'root.pem');
  const [root] = parseCertificates(readFileSync(rootPath), rootPath);
  if (root === undefined) throw new Error('no root');
  return {
    work,
    caDir,
    ca,
    caStore,
    root,
    rootPath,
    spec,
    operator: ca.certs.operator,
    operatorPath: join(caDir, 'operator.pem'),
    provision: async (serial, extra = {}) => {
      const dir = join(work, `dev-${serial}-${Math.random().toString(36).slice(2, 8)}`);
      await provisionDevice({ ca, caKeyStore: caStore, dir, serial, keystore: spec(join(dir, 'keys')), ...extra });
      return dir;
    },
    identity: async (kind, name, extra = {}) => {
      const dir = join(work, `${kind}-${name.replace(/[^A-Za-z0-9]/g, '')}-${Math.random().toString(36).slice(2, 8)}`);
      await createOperatorIdentity({ kind, out: dir, ca, caKeyStore: caStore, name, keystore: spec(join(dir, 'keys')), ...extra });
      return dir;
    },
  };
}

export async function signWith(devDir: string, data: Uint8Array, start?: Date, options: DeviceSignOptions = {}): Promise<Uint8Array> {
  const device = await openDevice(devDir);
  try {
    return (await signAnnexB(device, data, { ...options, ...(start !== undefined ? { start } : {}) })).output;
  } finally {
    await device.close();
  }
}

export function verify(data: Uint8Array, options: VerifierOptions): Promise<VerificationReport> {
  return verifyNals(splitAnnexB(data), options);
}

// ---- the unit-level model --------------------------------------------------------------------------------------

export interface Unit {
  /** Access units (NAL units each), signing SEIs removed. */
  aus: Uint8Array[][];
  /** The unit's signing SEIs: keyframe's unit SEI and the ONVIF SEI (undefined: dropped). */
  sei: Uint8Array[] | undefined;
}

export interface SignedStream {
  head: Uint8Array[];
  units: Unit[];
}

/** Splits a signed stream into the opening SEIs (ONVIF certificate, keyframe session) and units, each with the SEIs that sign it. */
export function parseSigned(data: Uint8Array): SignedStream {
  const asm = new AccessUnitAssembler();
  const aus = [...splitAnnexB(data).flatMap((n) => asm.push(n)), ...asm.flush()];
  const head: Uint8Array[] = [];
  const units: Unit[] = [];
  let cur: Unit = { aus: [], sei: undefined };
  for (const au of aus) {
    const rest: Uint8Array[] = [];
    for (const nal of au.nals) {
      const p = parseSigningSei(nal);
      if (p?.kind === 'kf-session' || (p?.kind === 'onvif' && p.certificate)) head.push(nal);
      else if (p !== undefined) {
        // the SEIs after a unit's frames sign it (keyframe's first, then ONVIF's)
        if (cur.aus.length > 0) {
          units.push(cur);
          cur = { aus: [], sei: undefined };
        }
        const last = units[units.length - 1];
        if (last !== undefined) (last.sei ??= []).push(nal);
      } else rest.push(nal);
    }
    if (rest.length > 0) cur.aus.push(rest);
  }
  if (cur.aus.length > 0) units.push(cur);
  return { head, units };
}

/** Writes the model back: each unit's SEIs right before the first slice of the next unit, the last as their own access unit. */
export function writeSigned(s: SignedStream): Uint8Array {
  const out: Uint8Array[] = [];
  let carry: Uint8Array[] = [...s.head];
  for (const u of s.units) {
    u.aus.forEach((au, i) => {
      let k = 0;
      while (k < au.length && !isVcl(nalType(au[k] as Uint8Array))) out.push(au[k++] as Uint8Array);
      if (i === 0) {
        out.push(...carry);
        carry = [];
      }
      out.push(...au.slice(k));
    });
    if (u.aus.length === 0) {
      out.push(...carry);
      carry = [];
    }
    if (u.sei !== undefined) carry.push(...u.sei);
  }
  out.push(...carry);
  return writeAnnexB(out);
}

/** Frames before unit k (the session frame index of its first frame). */
export function firstFrameOf(s: SignedStream, k: number): number {
  return s.units.slice(0, k).reduce((n, u) => n + u.aus.length, 0);
}

// ---- in-process CLI ------------------------------------------------------------------------------------------

class Buffered extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

/** Runs `keyframe sign|verify …` in-process with the signing commands registered as src/cli/main.ts does. */
export async function runSigningCli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Buffered();
  const stderr = new Buffered();
  let exitCode = 0;
  const ctx: CliContext = { stdout, stderr, setExitCode: (c) => (exitCode = c) };
  const program = new Command('keyframe')
    .configureOutput({ writeOut: (s) => ctx.stdout.write(s), writeErr: (s) => ctx.stderr.write(s), outputError: (s, write) => write(`keyframe: ${s.replace(/^error: /, '').trim()}\n`) })
    .exitOverride();
  registerSigningCommands(program, ctx);
  for (const sub of program.commands) sub.copyInheritedSettings(program);
  try {
    await program.parseAsync([...args], { from: 'user' });
    return { code: exitCode, stdout: stdout.text, stderr: stderr.text };
  } catch (e) {
    if (e instanceof CommanderError) return { code: 2, stdout: stdout.text, stderr: stderr.text };
    if (isKeyframeError(e)) return { code: e.exitCode, stdout: stdout.text, stderr: `${stderr.text}keyframe: ${e.message}\n` };
    throw e;
  }
}
