/**
 * `keyframe cert verify CERT --root ROOT.pem …`: full X.509 path validation of a certificate.
 * Exit 0 valid (also pinned), 1 invalid, 2 usage or input error (one line on stderr, nothing on stdout).
 */
import type { Command } from 'commander';
import type { X509Certificate, X509Crl } from '../../pki/x509.js';
import { InputError, UsageError } from '../../errors.js';
import { parseCertificates, parseCrls } from '../../pki/pem.js';
import { CERT_PURPOSES, type CertPurpose, type CertSummary, normalisePin, verifyCertificate, type VerifyResult } from '../../pki/verify.js';
import { readFileOrThrow } from '../../util/fs.js';
import { type CliContext, println } from '../context.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

interface VerifyFlags {
  readonly root: string[];
  readonly chain: string[];
  readonly crl: string[];
  readonly pin: string[];
  readonly at?: string;
  readonly purpose: string;
  readonly json?: boolean;
}

/** ISO 8601: a date (UTC midnight) or a date and time with an explicit zone (Z or ±hh:mm). */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/;

export function parseIsoTime(value: string): Date {
  const d = ISO_TIME.test(value) ? new Date(value) : undefined;
  if (d === undefined || Number.isNaN(d.getTime())) {
    throw new UsageError(`--at: "${value}" is not an ISO 8601 time with a zone (e.g. 2030-01-01T00:00:00Z)`);
  }
  return d;
}

function parsePurpose(value: string): CertPurpose {
  const purpose = CERT_PURPOSES.find((p) => p === value);
  if (purpose === undefined) throw new UsageError(`--purpose must be one of ${CERT_PURPOSES.join(', ')}, not "${value}"`);
  return purpose;
}

async function readCerts(path: string, what: string): Promise<X509Certificate[]> {
  return parseCertificates(await readFileOrThrow(path, what), path);
}

async function readCrls(path: string): Promise<X509Crl[]> {
  return parseCrls(await readFileOrThrow(path, 'CRL file'), path);
}

/** The CN of a subject, or the whole subject when it has none. */
function shortName(summary: CertSummary): string {
  const cn = /(?:^|,\s*)CN=((?:\\.|[^,\\])+)/.exec(summary.subject);
  return cn?.[1] ?? summary.subject;
}

function printHuman(ctx: CliContext, result: VerifyResult, at: Date): void {
  const leaf = result.chain[0];
  if (result.valid && leaf) {
    const how = result.status === 'pinned' ? `pinned sha256 ${leaf.sha256}` : `chain: ${result.chain.map(shortName).join(' ← ')}`;
    println(ctx.stdout, `OK: ${leaf.subject} (${how})`);
  } else {
    println(ctx.stdout, `INVALID: ${result.reason ?? 'unknown reason'}`);
    if (result.code) println(ctx.stdout, `code: ${result.code}`);
  }
  result.chain.forEach((c, i) => {
    println(ctx.stdout, `  ${i}: ${c.subject}`);
    println(ctx.stdout, `     issuer ${c.issuer}; serial ${c.serialNumber}; valid ${c.notBefore} … ${c.notAfter}`);
    println(ctx.stdout, `     sha256 ${c.sha256}`);
  });
  println(ctx.stdout, `checked at ${at.toISOString()}`);
  if (result.revokedLater) println(ctx.stdout, `note: revoked at ${result.revokedLater}, after the validation time`);
}

async function runVerify(ctx: CliContext, certPath: string, flags: VerifyFlags): Promise<void> {
  // usage first, before touching any file
  const at = flags.at === undefined ? new Date() : parseIsoTime(flags.at);
  const purpose = parsePurpose(flags.purpose);
  const pins = flags.pin.map((p) => {
    try {
      return normalisePin(p);
    } catch {
      throw new UsageError(`--pin: "${p}" is not a SHA-256 fingerprint (64 hex digits, colons allowed)`);
    }
  });
  if (flags.root.length === 0 && pins.length === 0) throw new UsageError('cert verify needs --root (or --pin for a self-signed certificate)');

  const [leaf, ...rest] = await readCerts(certPath, 'certificate file');
  if (leaf === undefined) throw new InputError(`${certPath}: no certificate found`);
  const roots = (await Promise.all(flags.root.map((p) => readCerts(p, 'root file')))).flat();
  const chain = (await Promise.all(flags.chain.map((p) => readCerts(p, 'chain file')))).flat();
  const crls = flags.crl.length > 0 ? (await Promise.all(flags.crl.map(readCrls))).flat() : undefined;

  const result = await verifyCertificate(leaf, {
    roots,
    intermediates: [...rest, ...chain],
    ...(crls === undefined ? {} : { crls }),
    at,
    pins,
    purpose,
  });
  if (flags.json === true) {
    const out = {
      valid: result.valid,
      status: result.status,
      reason: result.reason ?? null,
      code: result.code ?? null,
      chain: result.chain,
      at: at.toISOString(),
      revokedLater: result.revokedLater ?? null,
    };
    println(ctx.stdout, JSON.stringify(out, null, 2));
  } else {
    printHuman(ctx, result, at);
  }
  ctx.setExitCode(result.valid ? 0 : 1);
}

export function registerCertCommands(program: Command, ctx: CliContext): void {
  const cert = program.command('cert').description('inspect and verify certificates');
  cert
    .command('verify')
    .description('validate a certificate path to a trusted root (RFC 5280), with optional CRLs and pins')
    .argument('<cert>', 'certificate to verify (PEM or DER); further certificates in the file are chain candidates')
    .option('--root <pem>', 'trusted root certificate(s) (repeatable)', collect, [])
    .option('--chain <pem>', 'untrusted intermediate certificate(s) (repeatable)', collect, [])
    .option('--crl <crl>', 'CRL file(s); the leaf then needs a CRL from its issuer (repeatable)', collect, [])
    .option('--at <iso-time>', 'validation time, ISO 8601 with zone (default now)')
    .option('--pin <sha256>', 'trust this self-signed certificate by SHA-256 fingerprint (repeatable)', collect, [])
    .option('--purpose <purpose>', `one of ${CERT_PURPOSES.join(', ')}`, 'device')
    .option('--json', 'print the result as JSON')
    .action(async (certPath: string, flags: VerifyFlags) => runVerify(ctx, certPath, flags));
}
