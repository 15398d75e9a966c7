/**
 * `keyframe kms …`: the group-key management server and its clients.
 *
 *   kms init       a KMS identity, an administrator identity and a config file, from the CA
 *   kms serve      the service (HTTPS, mutual TLS, SQLite) until SIGINT / SIGTERM
 *   kms status | cameras | group create|add|remove|leader|refresh|show|list   administration over mutual TLS
 *   kms enrol | sync                                                           the camera side, from a device directory
 *
 * Administration authenticates with an operator-CA client identity (`--identity`, or $KEYFRAME_KMS_ADMIN) whose
 * common name the KMS config lists under "admins"; the KMS is checked against the operator CA in that identity's
 * chain. The URL comes from `--url` or $KEYFRAME_KMS_URL (default https://127.0.0.1:8443).
 */
import type { Command } from 'commander';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { ErrorCodes, KeyframeError, UsageError } from '../../errors.js';
import { loadKmsConfig, KMS_DEFAULTS } from '../../kms/config.js';
import { parseDuration } from '../../util/duration.js';
import { createLogger } from '../../server/log.js';
import type { openCameraAgent } from '../../camera/kms-agent.js';
import { readRoots } from '../../kms/open.js';
import type { GroupView } from '../../kms/service.js';
import { fingerprintSha256, subjectOf } from '../../pki/verify.js';
import { println } from '../context.js';
import type { CliContext } from '../context.js';
import { collect, parsePositiveInt } from '../options.js';
import { withCa } from './ca.js';
import { DEFAULT_URL, adminOptions, withAdmin } from '../admin.js';
import type { AdminOptions } from '../admin.js';

function formatGroup(v: GroupView): string {
  const lines = [
    `group ${v.id}: ${v.mode}${v.mode === 'hardened' ? `, degree ${v.degree}, tree height ${v.treeHeight ?? '?'}` : ''}`,
    `  epoch        ${v.mode === 'hardened' ? v.epoch : `n/a (paper: ACK ${v.ackStatus ?? 'none'})`}`,
    `  leader       ${v.leader ?? '(none)'}`,
    `  members (${v.members.length})  ${v.members.join(' ')}`,
    `  pending      ${v.pending.length === 0 ? '(none)' : v.pending.map((p) => `${p.op} ${p.serial}`).join(', ')}`,
    `  last rekey   ${v.lastRekeyAt ?? 'n/a'}`,
    `  refresh      every ${Math.round(v.refreshPeriodMs / 1000)} s; batch window ${v.batchWindowMs} ms`,
  ];
  if (v.alarm !== undefined) lines.push(`  ALARM        ${v.alarm.raisedAt}: ${v.alarm.message}`);
  if (v.lastAuth === undefined) lines.push(v.mode === 'hardened' ? '  last auth    none yet (the leader runs a challenge round: GroupKeyCamera.authRound)' : '  last auth    (the paper\'s schemes authenticate in their own messages)');
  else {
    const a = v.lastAuth;
    lines.push(`  last auth    ${a.at} epoch ${a.epoch}: ${a.verified ? 'verified' : 'FAILED'}; present ${a.present.length}, missing ${a.missing.length === 0 ? 0 : a.missing.join(' ')}${a.bad.length > 0 ? `, bad tags ${a.bad.join(' ')}` : ''}`);
  }
  return lines.join('\n');
}

export function registerKmsCommands(program: Command, ctx: CliContext): void {
  const kms = program.command('kms').description('group key management server (KMS): serve, administer, enrol cameras');
  const out = (o: AdminOptions, value: unknown, text: () => string): void => println(ctx.stdout, o.json === true ? JSON.stringify(value, null, 2) : text());

  kms
    .command('init')
    .description('create a KMS identity (operator CA, TLS server), an administrator identity (operator CA, TLS client) and DIR/kms.json')
    .requiredOption('--ca <DIR>', 'CA directory (operator CA issues both identities)')
    .requiredOption('--dir <DIR>', 'directory for kms/, admin/ and kms.json (kms/ and admin/ must not exist)')
    .option('--name <NAME>', 'KMS host name (certificate CN and DNS name)', 'localhost')
    .option('--ip <ADDR>', 'IP subjectAltName of the KMS (repeatable; default 127.0.0.1)', collect, [])
    .option('--port <N>', 'port to listen on', String(KMS_DEFAULTS.port))
    .option('--admin <NAME>', 'administrator common name', 'ops')
    .option('--keystore <SPEC>', 'key store for the KMS key (default file:DIR/kms/keys)')
    .option('--ca-keystore <SPEC>', 'CA key store, overriding the one recorded at init')
    .option('--crl <FILE>', 'CRL file the KMS checks every peer against (default CADIR/crl.pem, issued now if missing; renew it with keyframe ca crl)')
    .action(async (o: { ca: string; dir: string; name: string; ip: string[]; port: string; admin: string; keystore?: string; caKeystore?: string; crl?: string }) => {
      const dir = resolve(o.dir);
      const port = parsePositiveInt(o.port, '--port', 65535);
      for (const ip of o.ip) if (isIP(ip) === 0) throw new UsageError(`--ip ${JSON.stringify(ip)} is not an IPv4 or IPv6 address (a host name goes in --name)`);
      await withCa(resolve(o.ca), o.caKeystore, async (ca, caKeyStore) => {
        const { initKms } = await import('../../kms/init.js');
        const r = await initKms({ dir, ca, caKeyStore, name: o.name, ips: o.ip.length > 0 ? o.ip : ['127.0.0.1'], port, admin: o.admin, ...(o.keystore !== undefined ? { keystore: o.keystore } : {}), ...(o.crl !== undefined ? { crlFile: resolve(o.crl) } : {}) });
        println(ctx.stdout, `KMS identity ${subjectOf(r.kms)} (SHA-256 ${fingerprintSha256(r.kms)}) in ${join(dir, 'kms')}`);
        println(ctx.stdout, `administrator identity ${subjectOf(r.admin)} in ${join(dir, 'admin')}`);
        println(ctx.stdout, `CRLs ${r.crlFile}${r.crlIssued ? ' (issued now, valid 7 days: renew with keyframe ca crl --ca ' + resolve(o.ca) + ' --out ' + r.crlFile + ' before then; the KMS reloads it)' : ''}`);
        println(ctx.stdout, `database ${join(dir, 'kms.sqlite')}, config ${r.configPath}: keyframe kms serve --config ${r.configPath}`);
      });
    });

  kms
    .command('serve')
    .description('run the KMS until SIGINT or SIGTERM (HTTPS with mutual TLS; state in SQLite, WAL)')
    .requiredOption('--config <FILE>', 'KMS config (JSON)')
    .option('--new-database', 'create the database when it does not exist: a new, empty KMS (kms init already does)', false)
    .action(async (o: { config: string; newDatabase: boolean }) => {
      const config = loadKmsConfig(resolve(o.config));
      const logger = createLogger('kms');
      const { startKms } = await import('../../kms/server.js');
      const running = await startKms(config, { logger, createDatabase: o.newDatabase });
      logger.info({ event: 'listening', url: running.url, limits: config.limits }, `listening on ${running.url}`);
      await new Promise<void>((done) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          done();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await running.close();
      logger.info({ event: 'stopped' }, 'stopped');
    });

  adminOptions(kms.command('status').description('service status: uptime, database, groups')).action(async (o: AdminOptions) => {
    await withAdmin(o, async (c) => {
      const s = await c.json<{ startedAt: string; uptimeSeconds: number; database: Record<string, unknown>; groups: { id: string; mode: string; epoch: number; members: number; pending: number; leader: string | null }[] }>('GET', '/v1/admin/status');
      out(o, s, () =>
        [
          `KMS up ${s.uptimeSeconds} s (since ${s.startedAt}); database ${String(s.database['journalMode'])}: ${String(s.database['cameras'])} cameras enrolled, ${String(s.database['groups'])} groups, ${String(s.database['bundles'])} bundles`,
          ...s.groups.map((g) => `  ${g.id}  ${g.mode}  epoch ${g.epoch}  members ${g.members}  pending ${g.pending}  leader ${g.leader ?? '-'}`),
        ].join('\n'),
      );
    });
  });

  adminOptions(kms.command('cameras').description('enrolled cameras and their groups')).action(async (o: AdminOptions) => {
    await withAdmin(o, async (c) => {
      const r = await c.json<{ cameras: { serial: string; generation: number; enrolledAt: string; groups: string[] }[] }>('GET', '/v1/admin/cameras');
      out(o, r, () => (r.cameras.length === 0 ? 'no camera enrolled' : r.cameras.map((x) => `${x.serial}  generation ${x.generation}  enrolled ${x.enrolledAt}  groups ${x.groups.join(',') || '-'}`).join('\n')));
    });
  });

  const group = kms.command('group').description('camera groups: create, add, remove, leader, refresh, show, list');
  adminOptions(group.command('create').description('create a group (hardened by default) with its first members').argument('<ID>', 'group id'))
    .option('--mode <MODE>', 'hardened (default), scheme1 or scheme2 (the paper, faithful and insecure)', 'hardened')
    .option('--degree <D>', 'LKH tree degree, 2 or 4 (hardened)', '4')
    .option('--member <SERIAL>', 'a first member (repeatable; enrolled cameras)', collect, [])
    .option('--leader <SERIAL>', 'the leader camera (one of the members; required for scheme1/scheme2)')
    .option('--refresh <DURATION>', 'refresh period, e.g. 1h (default: the service setting)')
    .option('--batch <DURATION>', 'batching window for membership changes, e.g. 2s (default: the service setting)')
    .action(async (id: string, o: AdminOptions & { mode: string; degree: string; member: string[]; leader?: string; refresh?: string; batch?: string }) => {
      const body: Record<string, unknown> = { id, mode: o.mode, degree: parsePositiveInt(o.degree, '--degree', 4), members: o.member };
      if (o.leader !== undefined) body['leader'] = o.leader;
      if (o.refresh !== undefined) body['refreshPeriodMs'] = parseDuration(o.refresh, '--refresh');
      if (o.batch !== undefined) body['batchWindowMs'] = parseDuration(o.batch, '--batch');
      await withAdmin(o, async (c) => {
        const v = await c.json<GroupView>('POST', '/v1/admin/groups', body);
        out(o, v, () => `created ${formatGroup(v)}`);
      });
    });
  const change = (name: string, op: 'join' | 'leave'): void => {
    adminOptions(group.command(name).description(op === 'join' ? 'add an enrolled camera (hardened: applied in the next batched rekey)' : 'remove a camera (hardened: forward-secure rekey in the next batch)').argument('<ID>', 'group id').argument('<SERIAL>', 'camera serial')).action(
      async (id: string, serial: string, o: AdminOptions) => {
        await withAdmin(o, async (c) => {
          const r = op === 'join' ? await c.json<{ epoch: number | null; status: string }>('POST', `/v1/admin/groups/${encodeURIComponent(id)}/members`, { serial }) : await c.json<{ epoch: number | null; status: string }>('DELETE', `/v1/admin/groups/${encodeURIComponent(id)}/members/${encodeURIComponent(serial)}`);
          out(o, r, () => (r.status === 'applied' ? `${serial} ${op === 'join' ? 'joined' : 'left'} ${id}: epoch ${r.epoch ?? '?'}` : `${serial}: ${op} requested in ${id} (the paper's camera runs the ${op} protocol)`));
        });
      },
    );
  };
  change('add', 'join');
  change('remove', 'leave');
  adminOptions(group.command('leader').description('name the leader camera').argument('<ID>', 'group id').argument('<SERIAL>', 'camera serial')).action(async (id: string, serial: string, o: AdminOptions) => {
    await withAdmin(o, async (c) => {
      const v = await c.json<GroupView>('PUT', `/v1/admin/groups/${encodeURIComponent(id)}/leader`, { serial });
      out(o, v, () => formatGroup(v));
    });
  });
  adminOptions(group.command('refresh').description('a new epoch now: a fresh root, or (--tree) fresh keys for every interior node').argument('<ID>', 'group id'))
    .option('--tree', 'refresh every interior node key, not only the root', false)
    .action(async (id: string, o: AdminOptions & { tree: boolean }) => {
      await withAdmin(o, async (c) => {
        const r = await c.json<{ epoch: number }>('POST', `/v1/admin/groups/${encodeURIComponent(id)}/refresh`, { scope: o.tree ? 'tree' : 'root' });
        out(o, r, () => `${id}: epoch ${r.epoch}`);
      });
    });
  adminOptions(group.command('rebase').description('after an alarm (the KMS state is behind its cameras): a new history above their epochs; every member rejoins by a new welcome').argument('<ID>', 'group id')).action(async (id: string, o: AdminOptions) => {
    await withAdmin(o, async (c) => {
      const v = await c.json<GroupView>('POST', `/v1/admin/groups/${encodeURIComponent(id)}/rebase`, {});
      out(o, v, () => `rebased ${formatGroup(v)}`);
    });
  });
  adminOptions(group.command('show').description('one group: mode, epoch, members, leader, pending changes, last authentication').argument('<ID>', 'group id')).action(async (id: string, o: AdminOptions) => {
    await withAdmin(o, async (c) => {
      const v = await c.json<GroupView>('GET', `/v1/admin/groups/${encodeURIComponent(id)}`);
      out(o, v, () => formatGroup(v));
    });
  });
  adminOptions(group.command('list').description('every group')).action(async (o: AdminOptions) => {
    await withAdmin(o, async (c) => {
      const r = await c.json<{ groups: GroupView[] }>('GET', '/v1/admin/groups');
      out(o, r, () => (r.groups.length === 0 ? 'no group' : r.groups.map(formatGroup).join('\n')));
    });
  });

  const cameraOptions = (cmd: Command): Command =>
    cmd
      .requiredOption('--device <DEV>', 'device directory (device.json, chain.pem, key store)')
      .requiredOption('--kms-root <PEM>', 'the operator CA certificate the KMS must chain to')
      .option('--url <URL>', `KMS address (default $KEYFRAME_KMS_URL or ${DEFAULT_URL})`)
      .option('--state <DIR>', 'where the camera keeps its enrolment and group states (default DEV/kms)')
      .option('--keystore <SPEC>', 'device key store, overriding device.json');
  type CameraOptions = { device: string; kmsRoot: string; url?: string; state?: string; keystore?: string };
  const withCamera = async <T>(o: CameraOptions, fn: (cam: Awaited<ReturnType<typeof openCameraAgent>>['camera']) => Promise<T>): Promise<T> => {
    const device = resolve(o.device);
    const { openCameraAgent } = await import('../../camera/kms-agent.js');
    const agent = await openCameraAgent({ url: o.url ?? process.env['KEYFRAME_KMS_URL'] ?? DEFAULT_URL, deviceDir: device, stateDir: resolve(o.state ?? join(device, 'kms')), kmsRoots: readRoots(resolve(o.kmsRoot)), trustName: `--kms-root ${o.kmsRoot}`, ...(o.keystore !== undefined ? { keystore: o.keystore } : {}) });
    try {
      return await fn(agent.camera);
    } finally {
      await agent.close();
    }
  };
  cameraOptions(kms.command('enrol').description('camera: enrol with the KMS (authenticated ECDH from the device certificate; sub-keys sealed under K_i)'))
    .option('--force', 'enrol again (new sub-keys; the camera must be in no group)', false)
    .action(async (o: CameraOptions & { force: boolean }) => {
      await withCamera(o, async (cam) => {
        const generation = await cam.enrol({ force: o.force });
        println(ctx.stdout, `${cam.serial} enrolled with the KMS (key generation ${generation})`);
      });
    });
  cameraOptions(kms.command('sync').description("camera: bring a hardened group's keys up to date; prints the epoch and this camera's KID"))
    .requiredOption('--group <ID>', 'group id')
    .option('--wait <DURATION>', 'wait this long for a new epoch when there is none (long poll)', '0ms')
    .action(async (o: CameraOptions & { group: string; wait: string }) => {
      await withCamera(o, async (cam) => {
        const r = await cam.sync(o.group, { waitMs: parseDuration(o.wait, '--wait') });
        if (r.status === 'removed') throw new KeyframeError(ErrorCodes.GROUPKEY_REFUSED, `${cam.serial} is not a member of ${o.group} (last epoch ${r.epoch})`);
        const k = await cam.currentContentKey(o.group);
        println(ctx.stdout, `${cam.serial} ${o.group}: epoch ${r.epoch} (${r.status}); KID ${Buffer.from(k.kid).toString('hex')}`);
      });
    });
}
