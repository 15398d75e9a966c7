/**
 * `keyframe user …`, `keyframe grant …` and `keyframe decrypt --licence` against a real KMS (in this process: TLS,
 * SQLite, key stores, the browser listener), through the real CLI in child processes.
 *
 * - Accounts: add, list, show, passwd, role, disable, enable, totp; grants: add, list, revoke — each refusal one
 *   line `keyframe: …` with exit 2 (usage, input) or 1 (refused).
 * - Passwords only ever travel on stdin: no option takes one, and no password appears in any output or in the KMS's
 *   audit log.
 * - decrypt --licence: an MP4 encrypted under a camera's real content key (its KID known to the KMS); a granted
 *   account decrypts it to the source's pictures (ffmpeg framemd5); an account without a grant, or granted only some
 *   of the KIDs, is refused and nothing is written.
 * - readSecret in process: echo off at a terminal (raw mode, Backspace, Ctrl-C, the mode restored), and successive
 *   lines from a pipe.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBrowserSession } from '../../src/access/licence-client.js';
import { base32Decode, totp } from '../../src/access/totp.js';
import { main } from '../../src/cli/main.js';
import { readNewSecret, readSecret } from '../../src/cli/secret-input.js';
import { ErrorCodes } from '../../src/errors.js';
import type { KmsClient } from '../../src/kms/client.js';
import { loadKmsConfig } from '../../src/kms/config.js';
import { startKms } from '../../src/kms/server.js';
import type { RunningKms } from '../../src/kms/server.js';
import { writeChunksAtomic } from '../../src/packager/files.js';
import { openInput } from '../../src/packager/input.js';
import { emptyStats, packageChunks } from '../../src/packager/package.js';
import type { ContentKey } from '../../src/packager/package.js';
import { toPem } from '../../src/pki/pem.js';
import { expectOneLineError, runCli } from '../helpers/cli.js';
import type { CliResult } from '../helpers/cli.js';
import { clip, frameMd5s } from '../helpers/media.js';
import { makeKmsSite } from '../kms/_setup.js';
import type { KmsSite } from '../kms/_setup.js';

const PW = 'correct horse battery staple';
const PW2 = 'another long passphrase';
const PASSWORDS = [PW, PW2, 'short pw'];

let site: KmsSite;
let kms: RunningKms;
let admin: KmsClient;
let caPem: string[];
let caFile: string;
let env: NodeJS.ProcessEnv;
let source: string;
let media: string;
/** CAM-A's and CAM-B's content keys (group yard, epoch 1). */
const camKey = new Map<string, { kid: string; key: string }>();
/** tina's TOTP secret (base32), enrolled by the user tests. */
let tinaSecret = '';
/** Every CLI result, checked at the end for passwords. */
const results: CliResult[] = [];

async function cli(args: readonly string[], input?: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  for (const p of PASSWORDS) expect(args.join(' ')).not.toContain(p);
  const r = await runCli(args, { ...env, ...extraEnv }, undefined, input);
  results.push(r);
  return r;
}

/** The CLI in this process (src/cli/main.ts main), for refusals made before anything is read or asked. */
async function inProcess(args: readonly string[]): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await main([...args], { stdout, stderr });
  await new Promise((r) => setImmediate(r));
  return { code, stdout: out, stderr: err };
}

async function ok(args: readonly string[], input?: string): Promise<string> {
  const r = await cli(args, input);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toBe('');
  return r.stdout;
}

async function canLogin(user: string, password: string, code?: string): Promise<boolean> {
  try {
    const s = await openBrowserSession(kms.browserUrl as string, caPem, user, password, code);
    await s.logout();
    return true;
  } catch (e) {
    expect(e).toMatchObject({ code: ErrorCodes.FORBIDDEN });
    return false;
  }
}

beforeAll(async () => {
  site = await makeKmsSite(['CAM-A', 'CAM-B']);
  site.writeConfig(site.port, { batchWindow: '50ms', browser: { host: '127.0.0.1', port: 0 } });
  kms = await startKms(loadKmsConfig(site.configPath), { createDatabase: true });
  caFile = join(site.caDir, 'operator.pem');
  caPem = [toPem(site.ca.certs.operator.rawData, 'CERTIFICATE')];
  env = { KEYFRAME_KMS_URL: kms.url, KEYFRAME_KMS_ADMIN: site.adminDir, KEYFRAME_KMS_CA: caFile };
  admin = await site.admin(kms.url);
  const cams = await Promise.all(['CAM-A', 'CAM-B'].map((s) => site.camera(kms.url, s)));
  for (const c of cams) await c.camera.enrol();
  await admin.json('POST', '/v1/admin/groups', { id: 'yard', members: ['CAM-A', 'CAM-B'] });
  for (const [i, serial] of ['CAM-A', 'CAM-B'].entries()) {
    const cam = cams[i] as (typeof cams)[number];
    await cam.camera.sync('yard');
    const k = await cam.camera.currentContentKey('yard');
    camKey.set(serial, { kid: Buffer.from(k.kid).toString('hex'), key: Buffer.from(k.key).toString('hex') });
  }
  for (const c of cams) await c.close();
  expect(camKey.get('CAM-A')?.kid).not.toBe(camKey.get('CAM-B')?.kid);
  source = await clip({ width: 320, height: 240, fps: 25, seconds: 2, gop: 25 });
  media = join(site.work, 'media');
  mkdirSync(media);
}, 240_000);

afterAll(async () => {
  admin?.close();
  await kms?.close();
});

describe('keyframe user', () => {
  it('add: the password from stdin; list and show, aligned or as the JSON the KMS answers', async () => {
    expect(await ok(['user', 'add', 'olga', '--role', 'operator'], `${PW}\n`)).toMatch(/^added user olga \(operator\); it can decrypt nothing until a grant says so/);
    await ok(['user', 'add', 'ivan', '--role', 'investigator'], `${PW}\n`);
    await ok(['user', 'add', 'paul', '--role', 'investigator'], `${PW}\r\n`);
    expect(await canLogin('olga', PW)).toBe(true);
    expect(await canLogin('paul', PW)).toBe(true);

    const list = (await ok(['user', 'list'])).trimEnd().split('\n');
    expect(list[0]).toMatch(/^NAME {2,}ROLE {2,}STATUS {2,}TOTP {2,}SESSIONS {2,}CREATED$/);
    expect(list).toHaveLength(4);
    const col = (header: string): number => (list[0] as string).indexOf(header);
    for (const [line, name, role] of [[list[1], 'ivan', 'investigator'], [list[2], 'olga', 'operator'], [list[3], 'paul', 'investigator']] as const) {
      expect(line?.startsWith(name)).toBe(true);
      expect(line?.slice(col('ROLE')).startsWith(role)).toBe(true);
      expect(line?.slice(col('STATUS')).startsWith('active')).toBe(true);
      expect(line?.slice(col('TOTP')).startsWith('no')).toBe(true);
      expect(line?.slice(col('CREATED'))).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ by admin:ops$/);
    }
    const json = JSON.parse(await ok(['user', 'list', '--json'])) as { users: { name: string; role: string; disabled: boolean }[] };
    expect(json.users.map((u) => [u.name, u.role, u.disabled])).toEqual([
      ['ivan', 'investigator', false],
      ['olga', 'operator', false],
      ['paul', 'investigator', false],
    ]);

    const show = await ok(['user', 'show', 'olga']);
    expect(show).toMatch(/^user olga\n {2}role {7}operator\n {2}status {5}active\n {2}TOTP {7}none\n/);
    expect(show).toContain('  grants     none (this account can decrypt nothing)');
    expect(JSON.parse(await ok(['user', 'show', 'olga', '--json']))).toMatchObject({ name: 'olga', role: 'operator', totp: false, disabled: false, grants: [] });
  });

  it('add: refusals are one line: unknown role, short password, no password, a bad or existing name, a password on the command line', async () => {
    expectOneLineError(await cli(['user', 'add', 'zed', '--role', 'janitor'], `${PW}\n`), 2, /^keyframe: --role must be one of admin, operator, investigator, viewer, auditor$/);
    expectOneLineError(await cli(['user', 'add', 'zed', '--role', 'viewer'], 'short pw\n'), 2, /^keyframe: a password must be at least 12 characters$/);
    expectOneLineError(await cli(['user', 'add', 'zed', '--role', 'viewer'], ''), 2, /^keyframe: no password for zed on standard input/);
    expectOneLineError(await cli(['user', 'add', '-zed', '--role', 'viewer'], `${PW}\n`), 2, /^keyframe: /);
    expectOneLineError(await cli(['user', 'add', 'z/ed', '--role', 'viewer'], `${PW}\n`), 2, /^keyframe: a user name is 1–64 letters/);
    expectOneLineError(await cli(['user', 'add', 'zed'], `${PW}\n`), 2, /^keyframe: required option '--role <ROLE>' not specified$/);
    expectOneLineError(await cli(['user', 'add', 'olga', '--role', 'viewer'], `${PW}\n`), 1, /^keyframe: KMS: user olga exists$/);
    expectOneLineError(await cli(['user', 'add', 'zed', '--role', 'viewer', '--password', 'x'], `${PW}\n`), 2, /^keyframe: unknown option '--password'$/);
    expectOneLineError(await cli(['user', 'list'], undefined, { KEYFRAME_KMS_ADMIN: '' }), 2, /^keyframe: --identity <DIR> \(or \$KEYFRAME_KMS_ADMIN\) is required/);
    expectOneLineError(await cli(['user', 'show', 'nobody']), 2, /^keyframe: KMS: no user nobody$/);
    expect((JSON.parse(await ok(['user', 'list', '--json'])) as { users: unknown[] }).users).toHaveLength(3);
  });

  it('passwd: the new password works, the old one no more; a short one is refused and changes nothing', async () => {
    expect(await ok(['user', 'passwd', 'paul'], `${PW2}\n`)).toBe('password of paul changed; its sessions ended\n');
    expect(await canLogin('paul', PW)).toBe(false);
    expect(await canLogin('paul', PW2)).toBe(true);
    expectOneLineError(await cli(['user', 'passwd', 'paul'], 'short pw\n'), 2, /^keyframe: a password must be at least 12 characters$/);
    expectOneLineError(await cli(['user', 'passwd', 'nobody'], `${PW}\n`), 2, /^keyframe: KMS: no user nobody$/);
    expect(await canLogin('paul', PW2)).toBe(true);
    await ok(['user', 'passwd', 'paul'], `${PW}\n`);
  });

  it('role, disable, enable', async () => {
    expect(await ok(['user', 'role', 'olga', 'viewer'])).toBe('olga is now viewer; its sessions ended\n');
    expect(JSON.parse(await ok(['user', 'show', 'olga', '--json']))).toMatchObject({ role: 'viewer' });
    expectOneLineError(await cli(['user', 'role', 'olga', 'janitor']), 2, /^keyframe: role must be one of admin, operator, investigator, viewer, auditor$/);
    expect(await ok(['user', 'role', 'olga', 'operator', '--json'])).toMatch(/"role": "operator"/);

    expect(await ok(['user', 'disable', 'olga'])).toBe('olga disabled; its sessions ended\n');
    expect(await canLogin('olga', PW)).toBe(false);
    expect(await ok(['user', 'show', 'olga'])).toMatch(/ {2}status {5}disabled since \S+Z by admin:ops\n/);
    expect((await ok(['user', 'list'])).split('\n').find((l) => l.startsWith('olga'))).toMatch(/ disabled /);
    expect(await ok(['user', 'enable', 'olga'])).toBe('olga enabled\n');
    expect(await canLogin('olga', PW)).toBe(true);
    expectOneLineError(await cli(['user', 'disable', 'nobody']), 2, /^keyframe: KMS: no user nobody$/);
  });

  it('totp: the URI and secret shown once, to store in an authenticator app; the code then required; --remove', async () => {
    await ok(['user', 'add', 'tina', '--role', 'investigator'], `${PW}\n`);
    const shown = await ok(['user', 'totp', 'tina']);
    const lines = shown.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TOTP enrolled for tina\. Store this secret in an authenticator app now: it is shown only once/);
    expect(lines[1]).toMatch(/^ {2}URI {5}otpauth:\/\/totp\/keyframe:tina\?secret=[A-Z2-7]+&/);
    const secret = /^ {2}secret {2}([A-Z2-7]+)$/.exec(lines[2] ?? '')?.[1] as string;
    expect(lines[1]).toContain(`secret=${secret}`);
    expect(JSON.parse(await ok(['user', 'show', 'tina', '--json']))).toMatchObject({ totp: true });
    expect(await canLogin('tina', PW)).toBe(false);
    expect(await canLogin('tina', PW, totp(base32Decode(secret), Date.now()))).toBe(true);
    expect(await ok(['user', 'totp', 'tina', '--remove'])).toBe('TOTP removed from tina: it logs in with its password alone\n');
    expect(await canLogin('tina', PW)).toBe(true);
    // enrolled again for the decrypt test; --json prints the KMS's answer
    const again = JSON.parse(await ok(['user', 'totp', 'tina', '--json'])) as { secret: string; uri: string };
    expect(again.secret).toMatch(/^[A-Z2-7]+$/);
    expect(again.secret).not.toBe(secret);
    tinaSecret = again.secret;
  });
});

describe('keyframe grant', () => {
  it('add, list, show with the user, revoke, list --all', async () => {
    const a = await ok(['grant', 'add', '--user', 'ivan', '--camera', 'CAM-A', '--rights', 'playback,export', '--last', '1d', '--case', 'CASE-7']);
    expect(a).toMatch(/^added grant (\d+): user ivan may playback, export on camera CAM-A, recorded last 1d; valid from \S+Z until revoked; case CASE-7\n$/);
    const ivanGrant = Number(/^added grant (\d+)/.exec(a)?.[1]);
    const b = JSON.parse(await ok(['grant', 'add', '--role', 'viewer', '--group', 'yard', '--rights', 'live', '--from', '2026-01-01T00:00:00Z', '--to', '2026-01-02T00:00:00Z', '--valid-until', '2099-01-01T00:00:00Z', '--json'])) as { id: number; principal: unknown; scope: unknown; window: unknown; validTo: number };
    expect(b).toMatchObject({ principal: { kind: 'role', role: 'viewer' }, scope: { kind: 'group', group: 'yard' }, window: { kind: 'fixed', from: Date.parse('2026-01-01T00:00:00Z'), to: Date.parse('2026-01-02T00:00:00Z') }, validTo: Date.parse('2099-01-01T00:00:00Z') });
    await ok(['grant', 'add', '--user', 'tina', '--camera', 'CAM-A', '--rights', 'playback', '--last', '7d']);

    const list = (await ok(['grant', 'list'])).trimEnd().split('\n');
    expect(list[0]).toMatch(/^ID {2,}WHO {2,}SCOPE {2,}RIGHTS {2,}RECORDED {2,}VALID {2,}CASE {2,}STATUS$/);
    expect(list).toHaveLength(4);
    const col = (h: string): number => (list[0] as string).indexOf(h);
    const row = list.find((l) => l.startsWith(String(b.id))) as string;
    expect(row.slice(col('WHO'))).toMatch(/^role viewer +group yard +live +2026-01-01T00:00:00Z → 2026-01-02T00:00:00Z +from \S+Z until 2099-01-01T00:00:00Z +- +in force$/);
    expect(list.find((l) => l.startsWith(String(ivanGrant)))?.slice(col('WHO'))).toMatch(/^user ivan +camera CAM-A +playback,export +last 1d +from \S+Z until revoked +CASE-7 +in force$/);

    const show = await ok(['user', 'show', 'ivan']);
    expect(show).toContain("  grants (1, its own and its role's)");
    expect(show).toMatch(new RegExp(`\\n {4}${ivanGrant} +user ivan +camera CAM-A +playback,export +last 1d`));
    expect((JSON.parse(await ok(['user', 'show', 'olga', '--json'])) as { grants: unknown[] }).grants).toEqual([]);

    expect(await ok(['grant', 'revoke', String(b.id)])).toMatch(new RegExp(`^revoked grant ${b.id}: role viewer may live on group yard`));
    expect((await ok(['grant', 'list'])).trimEnd().split('\n')).toHaveLength(3);
    const all = (await ok(['grant', 'list', '--all'])).trimEnd().split('\n');
    expect(all).toHaveLength(4);
    expect(all.find((l) => l.startsWith(String(b.id)))).toMatch(/revoked \S+Z by admin:ops$/);
    expect((JSON.parse(await ok(['grant', 'list', '--all', '--json'])) as { grants: unknown[] }).grants).toHaveLength(3);
    expectOneLineError(await cli(['grant', 'revoke', String(b.id)]), 2, new RegExp(`^keyframe: KMS: grant ${b.id} is revoked already$`));
    expectOneLineError(await cli(['grant', 'revoke', '9999']), 2, /^keyframe: KMS: no grant 9999$/);
    expectOneLineError(await cli(['grant', 'revoke', 'x']), 2, /^keyframe: grant id: "x" is not a positive whole number$/);
  });

  it('add: conflicting or missing options are one line, exit 2, before the KMS is asked', async () => {
    const base = ['grant', 'add', '--rights', 'playback'];
    const cases: [string[], RegExp][] = [
      [['--user', 'ivan', '--role', 'viewer', '--camera', 'CAM-A', '--last', '1d'], /^keyframe: --user, --role and --certificate are exclusive/],
      [['--user', 'ivan', '--certificate', 'ops', '--camera', 'CAM-A', '--last', '1d'], /^keyframe: --user, --role and --certificate are exclusive/],
      [['--camera', 'CAM-A', '--last', '1d'], /^keyframe: --user NAME, --role ROLE or --certificate CN is required/],
      [['--user', 'ivan', '--camera', 'CAM-A', '--group', 'yard', '--last', '1d'], /^keyframe: --camera and --group are exclusive/],
      [['--user', 'ivan', '--last', '1d'], /^keyframe: --camera SERIAL or --group ID is required/],
      [['--user', 'ivan', '--camera', 'CAM-A'], /^keyframe: --from ISO --to ISO, or --last DURATION, is required/],
      [['--user', 'ivan', '--camera', 'CAM-A', '--from', '2026-01-01T00:00:00Z'], /^keyframe: --to is required with --from$/],
      [['--user', 'ivan', '--camera', 'CAM-A', '--last', '1d', '--from', '2026-01-01T00:00:00Z', '--to', '2026-01-02T00:00:00Z'], /^keyframe: --last and --from\/--to are exclusive/],
      [['--user', 'ivan', '--camera', 'CAM-A', '--from', '2026-01-02T00:00:00Z', '--to', '2026-01-01T00:00:00Z'], /^keyframe: --to must be after --from$/],
      [['--user', 'ivan', '--camera', 'CAM-A', '--from', 'yesterday', '--to', '2026-01-01T00:00:00Z'], /^keyframe: --from: "yesterday" is not an ISO 8601 time/],
      [['--user', 'ivan', '--camera', 'CAM-A', '--last', 'a week'], /^keyframe: --last: "a week" is not a duration/],
      [['--user', 'ivan', '--camera', 'CAM-A', '--last', '0d'], /^keyframe: --last must be a positive duration/],
      [['--role', 'janitor', '--camera', 'CAM-A', '--last', '1d'], /^keyframe: --role must be one of/],
      [['--user', 'ivan', '--camera', 'CAM-A', '--last', '1d', '--valid-until', '2020-01-01T00:00:00Z'], /^keyframe: --valid-until must be after now$/],
    ];
    // the same parser in this process (main: what bin/keyframe.js runs), to spare a dozen processes; one spawned
    for (const [args, pattern] of cases) expectOneLineError(await inProcess([...base, ...args]), 2, pattern);
    expectOneLineError(await cli([...base, ...(cases[0]?.[0] ?? [])]), 2, cases[0]?.[1] ?? /never/);
    expectOneLineError(await cli(['grant', 'add', '--user', 'ivan', '--camera', 'CAM-A', '--rights', 'watch', '--last', '1d']), 2, /^keyframe: --rights: "watch" is not one of live, playback, export, lock$/);
    expectOneLineError(await cli(['grant', 'add', '--user', 'ivan', '--camera', 'CAM-A', '--last', '1d']), 2, /^keyframe: required option '--rights <LIST>' not specified$/);
    expectOneLineError(await cli([...base, '--user', 'nobody', '--camera', 'CAM-A', '--last', '1d']), 2, /^keyframe: KMS: no user nobody$/);
    expect((await ok(['grant', 'list'])).trimEnd().split('\n')).toHaveLength(3);
  });
});

describe('keyframe decrypt --licence', () => {
  let encA: string;
  let encAB: string;
  let clear: string[];

  beforeAll(async () => {
    const a = camKey.get('CAM-A') as { kid: string; key: string };
    const b = camKey.get('CAM-B') as { kid: string; key: string };
    encA = join(media, 'cam-a.mp4');
    const r = await runCli(['package', source, '--out', encA, '--key', a.key, '--kid', a.kid]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`KID ${a.kid}`);
    // a file under both cameras' keys: CAM-A's for the first fragment, CAM-B's from the second
    encAB = join(media, 'cam-ab.mp4');
    const ck = (k: { kid: string; key: string }): ContentKey => ({ kid: Buffer.from(k.kid, 'hex'), key: Buffer.from(k.key, 'hex') });
    const input = await openInput(source);
    try {
      await writeChunksAtomic(encAB, packageChunks(input, { scheme: 'cbcs', keyFor: (i) => (i === 0 ? ck(a) : ck(b)) }, emptyStats()));
    } finally {
      await input.close();
    }
    clear = await frameMd5s(source);
    expect(clear).toHaveLength(50);
  }, 240_000);

  const outputs = (): string[] => readdirSync(media).filter((n) => n.includes('out'));

  it("a granted account gets exactly the file's KIDs and decrypts it to the source's pictures", async () => {
    const out = join(media, 'ivan-out.mp4');
    const r = await cli(['decrypt', encA, '--out', out, '--licence', kms.browserUrl as string, '--user', 'ivan', '--kms-ca', caFile], `${PW}\n`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const kid = camKey.get('CAM-A')?.kid as string;
    expect(r.stdout).toMatch(/^decrypted 50 samples in 2 fragments → /);
    expect(r.stdout).toContain(`  keys: 1 from the KMS at ${new URL(kms.browserUrl as string).origin}, licensed to ivan\n`);
    expect(r.stdout).toContain(`  KID ${kid}: key verified against the key check in the file`);
    expect(await frameMd5s(out)).toEqual(clear);
    // the licence asked for that KID only, was released, and the session was closed
    const log = await admin.json<{ entries: { entry: string }[] }>('GET', '/v1/admin/audit?from=1&limit=10000');
    const entries = log.entries.map((e) => JSON.parse(e.entry) as { action: string; actor: string; detail: { keys?: { kid: string; decision: string }[] } });
    const mine = entries.filter((e) => e.actor === 'user:ivan');
    expect(mine.map((e) => e.action)).toEqual(['login', 'licence', 'logout']);
    expect(mine[1]?.detail.keys).toEqual([expect.objectContaining({ kid, decision: 'released' })]);
  });

  it('with --totp: the password, then the code, both from stdin (default CA from $KEYFRAME_KMS_CA)', async () => {
    const secret = base32Decode(tinaSecret);
    const out = join(media, 'tina-out.mp4');
    const refused = await cli(['decrypt', encA, '--out', out, '--licence', kms.browserUrl as string, '--user', 'tina'], `${PW}\n`);
    expectOneLineError(refused, 1, /^keyframe: login as tina: refused$/);
    expect(existsSync(out)).toBe(false);
    const r = await cli(['decrypt', encA, '--out', out, '--licence', kms.browserUrl as string, '--user', 'tina', '--totp'], `${PW}\n${totp(secret, Date.now())}\n`);
    expect(r.code, r.stderr).toBe(0);
    expect(await frameMd5s(out)).toEqual(clear);
  });

  it('an account without a grant: "licence: refused", exit 1, no output', async () => {
    const out = join(media, 'paul-out.mp4');
    expectOneLineError(await cli(['decrypt', encA, '--out', out, '--licence', kms.browserUrl as string, '--user', 'paul'], `${PW}\n`), 1, /^keyframe: licence: refused$/);
    expect(existsSync(out)).toBe(false);
  });

  it('some KIDs granted, others not: nothing decrypted, the KIDs not granted named', async () => {
    const out = join(media, 'ivan-ab-out.mp4');
    const b = camKey.get('CAM-B')?.kid as string;
    expectOneLineError(await cli(['decrypt', encAB, '--out', out, '--licence', kms.browserUrl as string, '--user', 'ivan'], `${PW}\n`), 1, new RegExp(`^keyframe: licence: 1 of 2 KIDs not granted to ivan \\(${b}\\): nothing decrypted$`));
    expect(existsSync(out)).toBe(false);
    // granted both cameras: the whole file
    await ok(['grant', 'add', '--user', 'ivan', '--camera', 'CAM-B', '--rights', 'playback', '--last', '1d']);
    const r = await cli(['decrypt', encAB, '--out', out, '--licence', kms.browserUrl as string, '--user', 'ivan'], `${PW}\n`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('  keys: 2 from the KMS');
    expect(await frameMd5s(out)).toEqual(clear);
  });

  it('a revoked grant, a wrong password, a disabled account: refused, nothing written', async () => {
    const out = join(media, 'refused-out.mp4');
    const args = ['decrypt', encA, '--out', out, '--licence', kms.browserUrl as string, '--user', 'olga'];
    await ok(['grant', 'add', '--user', 'olga', '--camera', 'CAM-A', '--rights', 'playback', '--last', '1d']);
    const ok1 = await cli(args, `${PW}\n`);
    expect(ok1.code, ok1.stderr).toBe(0);
    const id = (JSON.parse(await ok(['user', 'show', 'olga', '--json'])) as { grants: { id: number }[] }).grants[0]?.id as number;
    await ok(['grant', 'revoke', String(id)]);
    const out2 = join(media, 'refused2-out.mp4');
    const args2 = ['decrypt', encA, '--out', out2, '--licence', kms.browserUrl as string, '--user', 'olga'];
    expectOneLineError(await cli(args2, `${PW}\n`), 1, /^keyframe: licence: refused$/);
    expectOneLineError(await cli(args2, `${PW2}\n`), 1, /^keyframe: login as olga: refused$/);
    await ok(['user', 'disable', 'olga']);
    expectOneLineError(await cli(['decrypt', encA, '--out', out2, '--licence', kms.browserUrl as string, '--user', 'olga'], `${PW}\n`), 1, /^keyframe: login as olga: refused$/);
    expect(existsSync(out2)).toBe(false);
  });

  it('usage: --licence and --key exclusive, --user and a CA required, no password on stdin, clear input', async () => {
    const out = join(media, 'usage-out.mp4');
    const url = kms.browserUrl as string;
    const key = camKey.get('CAM-A')?.key as string;
    const before = outputs();
    expectOneLineError(await cli(['decrypt', encA, '--out', out, '--licence', url, '--user', 'ivan', '--key', key], `${PW}\n`), 2, /^keyframe: --licence and --key are exclusive/);
    expectOneLineError(await cli(['decrypt', encA, '--out', out, '--licence', url], `${PW}\n`), 2, /^keyframe: --licence needs --user NAME/);
    expectOneLineError(await cli(['decrypt', encA, '--out', out, '--licence', url, '--user', 'ivan'], `${PW}\n`, { KEYFRAME_KMS_CA: '' }), 2, /^keyframe: --kms-ca FILE \(or \$KEYFRAME_KMS_CA\) is required with --licence/);
    expectOneLineError(await cli(['decrypt', encA, '--out', out, '--licence', url, '--user', 'ivan', '--kms-ca', join(media, 'none.pem')], `${PW}\n`), 2, /^keyframe: certificate file not found: /);
    expectOneLineError(await cli(['decrypt', encA, '--out', out, '--user', 'ivan'], `${PW}\n`), 2, /^keyframe: --user, --kms-ca and --totp go with --licence URL$/);
    expectOneLineError(await cli(['decrypt', encA, '--out', out]), 2, /^keyframe: --key or --licence is required$/);
    expectOneLineError(await cli(['decrypt', encA, '--out', out, '--licence', url, '--user', 'ivan'], ''), 2, /^keyframe: no password for ivan on standard input/);
    expectOneLineError(await cli(['decrypt', encA, '--out', out, '--licence', url, '--user', 'ivan', '--password', PW.replace(/ /g, '')]), 2, /^keyframe: unknown option '--password'$/);
    expectOneLineError(await cli(['decrypt', encA, '--out', out, '--licence', url.replace('https:', 'http:'), '--user', 'ivan'], `${PW}\n`), 2, /^keyframe: --licence must be an https URL/);
    const clearMp4 = join(media, 'clear.mp4');
    expect((await runCli(['package', source, '--out', clearMp4, '--scheme', 'none'])).code).toBe(0);
    expectOneLineError(await cli(['decrypt', clearMp4, '--out', out, '--licence', url, '--user', 'ivan'], `${PW}\n`), 2, /^keyframe: the input is not encrypted/);
    expect(outputs()).toEqual(before);
    // the --key path is unchanged
    const r = await cli(['decrypt', encA, '--out', out, '--key', key]);
    expect(r.code, r.stderr).toBe(0);
    expect(await frameMd5s(out)).toEqual(clear);
  });
});

describe('passwords stay secret', () => {
  it('no password in any output of the CLI, nor in the KMS audit log', async () => {
    expect(results.length).toBeGreaterThan(50);
    for (const r of results) for (const p of PASSWORDS) expect(`${r.stdout}\n${r.stderr}`).not.toContain(p);
    const log = await admin.call('GET', '/v1/admin/audit?from=1&limit=10000');
    for (const p of PASSWORDS) expect(log.body.toString('utf8')).not.toContain(p);
  });
});

describe('readSecret', () => {
  function fakeTty(): PassThrough & { isTTY: boolean; isRaw: boolean; modes: boolean[]; setRawMode(m: boolean): void } {
    const s = new PassThrough() as PassThrough & { isTTY: boolean; isRaw: boolean; modes: boolean[]; setRawMode(m: boolean): void };
    s.isTTY = true;
    s.isRaw = false;
    s.modes = [];
    s.setRawMode = (m: boolean) => {
      s.modes.push(m);
      s.isRaw = m;
    };
    return s;
  }
  function sink(): PassThrough & { text: () => string } {
    const s = new PassThrough();
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString()));
    return Object.assign(s, { text: () => text });
  }

  it('at a terminal: the prompt on stderr, echo off (raw mode, restored), Backspace and Ctrl-U edit, escape sequences ignored', async () => {
    const stdin = fakeTty();
    const stderr = sink();
    const p = readSecret('Password for x: ', { stdin, stderr });
    stdin.write('wrong\u0015sec');
    stdin.write('reX\u007f\u001b[At pass\u00e9');
    stdin.write('\r');
    expect(await p).toBe('secret passé');
    expect(stdin.modes).toEqual([true, false]);
    expect(stdin.isRaw).toBe(false);
    await new Promise((r) => setImmediate(r));
    expect(stderr.text()).toBe('Password for x: \n');
  });

  it('at a terminal: Ctrl-C aborts with one line (exit 2), the mode restored; a new secret is asked twice and must match', async () => {
    const stdin = fakeTty();
    const stderr = sink();
    const p = readSecret('Password for x: ', { stdin, stderr });
    stdin.write('abc\u0003');
    await expect(p).rejects.toMatchObject({ code: ErrorCodes.USAGE, exitCode: 2, message: 'interrupted: no password for x read' });
    expect(stdin.modes).toEqual([true, false]);

    const two = fakeTty();
    const q = readNewSecret('New: ', 'Again: ', { stdin: two, stderr });
    two.write(`${PW}\r`);
    await new Promise((r) => setImmediate(r));
    two.write(`${PW2}\r`);
    await expect(q).rejects.toMatchObject({ code: ErrorCodes.USAGE, message: 'the two entries of the password do not match: nothing changed' });
    const three = fakeTty();
    const same = readNewSecret('New: ', 'Again: ', { stdin: three, stderr });
    three.write(`${PW}\r`);
    await new Promise((r) => setImmediate(r));
    three.write(`${PW}\r`);
    expect(await same).toBe(PW);
    expect(three.modes).toEqual([true, false, true, false]);
  });

  it('from a pipe: one line per read, no prompt, asked once; the end of input is one line (exit 2)', async () => {
    const stdin = new PassThrough();
    const stderr = sink();
    stdin.end(`${PW}\n123456\r\nlast`);
    expect(await readNewSecret('New: ', 'Again: ', { stdin, stderr })).toBe(PW);
    expect(await readSecret('TOTP code: ', { stdin, stderr })).toBe('123456');
    expect(await readSecret('X: ', { stdin, stderr })).toBe('last');
    await expect(readSecret('TOTP code: ', { stdin, stderr })).rejects.toMatchObject({ code: ErrorCodes.USAGE, message: expect.stringMatching(/^no TOTP code on standard input/) as unknown });
    expect(stderr.text()).toBe('');
  });
});
