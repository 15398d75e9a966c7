/**
 * `keyframe audit …`: the KMS's audit log as evidence (issue 13 §4).
 *
 *   audit export --out FILE     the whole log (entries, signed checkpoints, the KMS's chain) from a running KMS
 *   audit verify FILE           offline: the signer against the operator CA, the chain, every checkpoint; names the
 *                               first broken entry (exit 1). FILE is an export, or a stopped KMS's database
 *                               (with --kms-chain)
 *   audit show [FILE]           entries filtered by --user --camera --action --from --to (an export, or the running
 *                               KMS with the admin options)
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { formatAuditExport, readAuditLog, verifyAuditExport } from '../../audit/export.js';
import type { AuditExport } from '../../audit/export.js';
import type { Checkpoint, ChainRow } from '../../audit/chain.js';
import { InputError, NotFoundError, errnoCode } from '../../errors.js';
import type { KmsClient } from '../../kms/client.js';
import { parseCertificates } from '../../pki/pem.js';
import type { X509Certificate } from '../../pki/x509.js';
import { checkOutput, writeFileAtomic } from '../../util/fs.js';
import { println } from '../context.js';
import type { CliContext } from '../context.js';
import { parseIsoTime } from '../options.js';
import { adminOptions, withAdmin } from '../admin.js';
import type { AdminOptions } from '../admin.js';

/** Pages through the running KMS's log. */
async function fetchLog(c: KmsClient): Promise<AuditExport> {
  const rows: ChainRow[] = [];
  let checkpoints: Checkpoint[] = [];
  let origin = '';
  let chain: string[] = [];
  for (;;) {
    const page = await c.json<{ origin: string; chain: string[]; size: number; entries: ChainRow[]; checkpoints: Checkpoint[] }>('GET', `/v1/admin/audit?from=${rows.length + 1}&limit=10000`);
    if (rows.length === 0) {
      origin = page.origin;
      chain = page.chain;
      checkpoints = page.checkpoints;
    }
    rows.push(...page.entries);
    if (page.entries.length === 0 || rows.length >= page.size) break;
  }
  return { origin, chain, rows, checkpoints };
}

function readOperatorCa(file: string): X509Certificate {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`operator CA certificate not found: ${file}`);
    throw e;
  }
  const certs = parseCertificates(pem, file);
  if (certs.length !== 1) throw new InputError(`${file}: expected one certificate (the operator CA), found ${certs.length}`);
  return certs[0] as X509Certificate;
}

interface Entry {
  seq: number;
  at: string;
  actor: string;
  action: string;
  detail?: Record<string, unknown>;
  from?: { address?: string; ua?: string };
}

function matches(e: Entry, f: { user?: string; camera?: string; action?: string; from?: number; to?: number }): boolean {
  const t = Date.parse(e.at);
  if (f.from !== undefined && t < f.from) return false;
  if (f.to !== undefined && t >= f.to) return false;
  if (f.action !== undefined && e.action !== f.action) return false;
  const text = JSON.stringify(e.detail ?? {});
  if (f.user !== undefined && e.actor !== `user:${f.user}` && (e.detail?.['user'] as string | undefined) !== f.user) return false;
  if (f.camera !== undefined && !text.includes(`"camera":${JSON.stringify(f.camera)}`) && !text.includes(`"serial":${JSON.stringify(f.camera)}`)) return false;
  return true;
}

function summary(e: Entry): string {
  const d = e.detail ?? {};
  const keys = d['keys'];
  if (Array.isArray(keys)) {
    const k = keys as { kid: string; decision: string; camera?: string; epoch?: number }[];
    return k.map((x) => `${x.decision} ${x.kid.slice(0, 8)}…${x.camera !== undefined ? ` ${x.camera} epoch ${x.epoch}` : ''}`).join('; ');
  }
  return Object.entries(d)
    .filter(([k]) => k !== 'record')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

export function registerAuditCommands(program: Command, ctx: CliContext): void {
  const audit = program.command('audit').description("the KMS's audit log: export, verify offline, show");

  adminOptions(audit.command('export').description('write the whole log (entries, signed checkpoints, the KMS certificate chain) to a file'))
    .requiredOption('--out <FILE>', 'output file (JSON Lines)')
    .option('--checkpoint', 'ask the KMS to sign a checkpoint over the newest entries first', false)
    .option('--force', 'replace FILE if it exists')
    .action(async (o: AdminOptions & { out: string; checkpoint?: boolean; force?: boolean }) => {
      const out = await checkOutput(o.out, { kind: 'file', force: o.force === true });
      const log = await withAdmin(o, async (c) => {
        if (o.checkpoint === true) await c.json('POST', '/v1/admin/audit/checkpoint', {});
        return fetchLog(c);
      });
      await writeFileAtomic(out.path, formatAuditExport(log), { mode: 0o600 });
      const last = log.checkpoints.at(-1);
      println(ctx.stdout, `exported ${log.rows.length} entries and ${log.checkpoints.length} checkpoints (the last at entry ${last?.size ?? '-'}) → ${out.path}`);
    });

  audit
    .command('verify')
    .description('check a log offline: its signer against the operator CA, the hash chain, every signed checkpoint')
    .argument('<FILE>', 'an audit export, or a stopped KMS database')
    .requiredOption('--operator-ca <FILE>', 'the operator CA certificate the KMS certificate must chain to')
    .option('--kms-chain <FILE>', "for a database: the KMS identity's chain.pem")
    .option('--json', 'JSON output', false)
    .action(async (file: string, o: { operatorCa: string; kmsChain?: string; json?: boolean }) => {
      const log = readAuditLog(resolve(file), o.kmsChain === undefined ? undefined : resolve(o.kmsChain));
      const r = await verifyAuditExport(log, readOperatorCa(resolve(o.operatorCa)));
      if (o.json === true) println(ctx.stdout, JSON.stringify(r, null, 2));
      else if (r.ok) {
        println(ctx.stdout, `audit log OK: ${r.entries} entries, chain head ${r.head}`);
        println(ctx.stdout, `  signed by ${r.signer} (chains to the operator CA); ${r.checkpoints} checkpoints, the last covering entry ${r.covered}`);
        if (r.uncovered > 0) println(ctx.stdout, `  ${r.uncovered} entries after the last checkpoint are protected by the hash chain only`);
      } else {
        println(ctx.stdout, `audit log BROKEN${r.problem?.seq !== undefined ? ` at entry ${r.problem.seq}` : ''}: ${r.signerProblem ?? r.problem?.message ?? 'not valid'}`);
      }
      if (!r.ok) ctx.setExitCode(1);
    });

  adminOptions(audit.command('show').description('entries, filtered (from an export, or the running KMS)').argument('[FILE]', 'an audit export (default: the running KMS)'))
    .option('--user <NAME>', 'entries by or about this account')
    .option('--camera <SERIAL>', 'entries naming this camera')
    .option('--action <ACTION>', 'one action (login, login-failure, licence, licence-denied, grant-add, …)')
    .option('--from <ISO>', 'entries at or after this time')
    .option('--to <ISO>', 'entries before this time')
    .action(async (file: string | undefined, o: AdminOptions & { user?: string; camera?: string; action?: string; from?: string; to?: string }) => {
      const log = file !== undefined ? readAuditLog(resolve(file)) : await withAdmin(o, fetchLog);
      const f = {
        ...(o.user !== undefined ? { user: o.user } : {}),
        ...(o.camera !== undefined ? { camera: o.camera } : {}),
        ...(o.action !== undefined ? { action: o.action } : {}),
        ...(o.from !== undefined ? { from: parseIsoTime(o.from, '--from').getTime() } : {}),
        ...(o.to !== undefined ? { to: parseIsoTime(o.to, '--to').getTime() } : {}),
      };
      const entries = log.rows.map((r) => JSON.parse(r.entry) as Entry).filter((e) => matches(e, f));
      if (o.json === true) {
        println(ctx.stdout, JSON.stringify(entries, null, 2));
        return;
      }
      for (const e of entries) println(ctx.stdout, `${String(e.seq).padStart(6)}  ${e.at}  ${e.actor.padEnd(18)} ${e.action.padEnd(16)} ${summary(e)}${e.from?.address !== undefined ? `  [${e.from.address}]` : ''}`);
      println(ctx.stdout, `${entries.length} of ${log.rows.length} entries`);
    });
}
