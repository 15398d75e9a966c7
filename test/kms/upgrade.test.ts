/**
 * Acceptance: an existing KMS database from the previous release upgrades by migration and keeps working.
 *
 * test/fixtures/kms-previous-release/ was made by the previous release's own code (6108ebc, schema 2; README.md
 * there says how, scripts/fixtures/make-kms-previous-release.mjs re-makes it): a KMS, two enrolled cameras with
 * their state, a hardened group "lobby" at epoch 2, content keys released, a challenge round, and expected.json with
 * what that release answered. The current code starts on a copy of it: the schema is migrated to the latest, the
 * group, its keys and its cameras work on, the audit log becomes one verified chain that holds the old rows, and a
 * second start on the upgraded file migrates nothing.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../src/audit/chain.js';
import type { ChainRow } from '../../src/audit/chain.js';
import { openCameraAgent } from '../../src/camera/kms-agent.js';
import type { GroupKeyCamera } from '../../src/camera/group-key.js';
import type { KmsClient } from '../../src/kms/client.js';
import { loadKmsConfig } from '../../src/kms/config.js';
import { KMS_MIGRATIONS, KmsDb } from '../../src/kms/db.js';
import { openAdminClient, readRoots } from '../../src/kms/open.js';
import { startKms } from '../../src/kms/server.js';
import type { RunningKms } from '../../src/kms/server.js';
import { PIN_ENV } from './_setup.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'kms-previous-release');
const LATEST = KMS_MIGRATIONS.at(-1)?.version ?? 0;
const GROUP = 'lobby';
const SERIALS = ['CAM-A', 'CAM-B'] as const;

interface Expected {
  readonly generatedBy: { readonly commit: string };
  readonly keystore: { readonly pinEnv: string; readonly passphrase: string };
  readonly schema: number;
  readonly group: { readonly id: string; readonly mode: string; readonly degree: number; readonly leader: string; readonly members: string[]; readonly epoch: number; readonly refreshPeriodMs: number; readonly lastAuth: Record<string, unknown> };
  readonly cameras: { readonly serial: string; readonly generation: number; readonly groups: string[] }[];
  readonly contentKeys: Record<string, Record<string, { readonly kid: string; readonly keySha256: string }>>;
  readonly audit: { readonly rows: number; readonly entries: { readonly seq: number; readonly at: number; readonly actor: string; readonly action: string; readonly detail: Record<string, unknown> }[] };
}
interface Released {
  kid: string;
  group: string;
  camera: string;
  epoch: number;
  key: string;
}

const expected = JSON.parse(readFileSync(join(FIXTURE, 'expected.json'), 'utf8')) as Expected;
const sha256 = (hex: string): string => createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');

let work: string;
let site: string;
let dbFile: string;
let kms: RunningKms | undefined;
let admin: KmsClient | undefined;
const cams = new Map<string, { camera: GroupKeyCamera; close(): Promise<void> }>();
/** The audit chain as the first start of the current code left it. */
let afterFirstRun: ChainRow[] = [];

/** The fixture copied with the modes the KMS and the key stores demand (git keeps neither): dirs 0700, files 0600. */
function copyTree(from: string, to: string): void {
  mkdirSync(to, { mode: 0o700 });
  chmodSync(to, 0o700);
  for (const e of readdirSync(from, { withFileTypes: true })) {
    if (from === FIXTURE && (e.name === 'README.md' || e.name === 'expected.json')) continue;
    if (e.isDirectory()) copyTree(join(from, e.name), join(to, e.name));
    else {
      copyFileSync(join(from, e.name), join(to, e.name));
      chmodSync(join(to, e.name), 0o600);
    }
  }
}

/**
 * The database read while no KMS holds it, from a copy: a closed KMS leaves one file (no -wal: all of it is in the
 * file), and a read-only connection would leave a -wal and -shm beside the one the KMS opens next.
 */
let reads = 0;
function read<T>(fn: (d: Database.Database) => T): T {
  for (const extra of ['-wal', '-shm']) expect(existsSync(`${dbFile}${extra}`), `${dbFile}${extra}`).toBe(false);
  const copy = join(work, `read-${++reads}.sqlite`);
  copyFileSync(dbFile, copy);
  const d = new Database(copy, { readonly: true, fileMustExist: true });
  try {
    return fn(d);
  } finally {
    d.close();
  }
}
const schemaOf = (): string | undefined => read((d) => d.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema'").get()?.value);
const chainRows = (): ChainRow[] => read((d) => d.prepare<[], ChainRow>('SELECT seq, entry, leaf, prev, hash FROM audit ORDER BY seq').all());

async function start(): Promise<RunningKms> {
  kms = await startKms(loadKmsConfig(join(site, 'kms.json')));
  admin = await openAdminClient(kms.url, join(site, 'admin'));
  const roots = readRoots(join(site, 'ca', 'operator.pem'));
  for (const s of SERIALS) cams.set(s, await openCameraAgent({ url: kms.url, deviceDir: join(site, 'cams', s), stateDir: join(site, 'cams', s, 'kms'), kmsRoots: roots }));
  return kms;
}

async function stop(): Promise<void> {
  for (const c of cams.values()) await c.close();
  cams.clear();
  admin?.close();
  admin = undefined;
  await kms?.close();
  kms = undefined;
}

const cam = (s: string): GroupKeyCamera => (cams.get(s) as { camera: GroupKeyCamera }).camera;
const adm = (): KmsClient => admin as KmsClient;
const release = (kid: string): Promise<Released> => adm().json<Released>('POST', '/v1/admin/content-key', { kid });

beforeAll(() => {
  expect(expected.keystore.pinEnv).toBe(PIN_ENV);
  process.env[PIN_ENV] = expected.keystore.passphrase;
  work = mkdtempSync(join(tmpdir(), 'kf-kms-upgrade-'));
  site = join(work, 'site');
  copyTree(FIXTURE, site);
  dbFile = join(site, 'kms.sqlite');
});

afterAll(async () => {
  await stop();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe('a KMS database of the previous release (6108ebc, schema 2) under the current code', () => {
  it('the fixture is what that release left: schema 2, the audit table without a chain, no -wal beside it', () => {
    expect(expected.generatedBy.commit).toBe('6108ebc5a784ba25b2d24dd9d51e7c5143ccbd69');
    expect(LATEST).toBeGreaterThan(2);
    for (const extra of ['-wal', '-shm']) expect(existsSync(join(FIXTURE, `kms.sqlite${extra}`))).toBe(false);
    expect(schemaOf()).toBe('2');
    expect(expected.schema).toBe(2);
    read((d) => {
      expect(d.prepare<[], { name: string }>('SELECT name FROM pragma_table_info(\'audit\') ORDER BY cid').all().map((c) => c.name)).toEqual(['seq', 'at', 'actor', 'action', 'detail']);
      expect(d.prepare<[], { n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE name = 'audit_checkpoints'").get()?.n).toBe(0);
      expect(d.prepare<[], { n: number }>('SELECT count(*) AS n FROM audit').get()?.n).toBe(expected.audit.rows);
    });
    expect(expected.audit.rows).toBe(9);
    expect(statSync(dbFile).mode & 0o777).toBe(0o600);
  });

  it('the current KMS starts on it: its group is served with its members, epoch and last challenge round; its cameras are enrolled; nothing is damaged', async () => {
    await start();
    const view = await adm().json<Record<string, unknown>>('GET', `/v1/admin/groups/${GROUP}`);
    expect(view).toMatchObject({
      id: GROUP,
      mode: 'hardened',
      degree: 4,
      leader: 'CAM-A',
      members: ['CAM-A', 'CAM-B'],
      epoch: 2,
      pending: [],
      refreshPeriodMs: 36500 * 86_400_000,
      lastAuth: expected.group.lastAuth,
    });
    expect(expected.group).toMatchObject({ id: GROUP, mode: 'hardened', degree: 4, leader: 'CAM-A', members: ['CAM-A', 'CAM-B'], epoch: 2 });
    expect(view['alarm']).toBeUndefined();
    const list = await adm().json<{ groups: { id: string }[] }>('GET', '/v1/admin/groups');
    expect(list.groups.map((g) => g.id)).toEqual([GROUP]);
    const cameras = await adm().json<{ cameras: { serial: string; generation: number; groups: string[] }[] }>('GET', '/v1/admin/cameras');
    expect(cameras.cameras.map((c) => ({ serial: c.serial, generation: c.generation, groups: c.groups }))).toEqual(expected.cameras);
    expect(expected.cameras.map((c) => c.serial)).toEqual(['CAM-A', 'CAM-B']);
    const status = await adm().json<{ damaged: unknown; database: Record<string, unknown> }>('GET', '/v1/admin/status');
    expect(status.damaged).toEqual({ groups: {}, cameras: {} });
    expect(status.database).toMatchObject({ journalMode: 'wal', cameras: 2, groups: 1, bundles: 2 });
  });

  it('every content key the previous release released (epochs 1 and 2, both cameras) is released again, the same key — now only through a grant', async () => {
    expect(Object.keys(expected.contentKeys)).toEqual(['1', '2']);
    // since schema 4 a certificate administrator gets keys only where a grant covers them: none yet, none released
    await expect(release(expected.contentKeys['1']?.['CAM-A']?.kid as string)).rejects.toMatchObject({ code: 'KF_ERR_FORBIDDEN' });
    await adm().json('POST', '/v1/admin/grants', { certificate: 'ops', group: GROUP, rights: ['playback'], lastMs: 100 * 365 * 86_400_000 });
    for (const [epoch, byCamera] of Object.entries(expected.contentKeys)) {
      expect(Object.keys(byCamera)).toEqual(['CAM-A', 'CAM-B']);
      for (const [serial, k] of Object.entries(byCamera)) {
        const r = await release(k.kid);
        expect({ kid: r.kid, group: r.group, camera: r.camera, epoch: r.epoch }).toEqual({ kid: k.kid, group: GROUP, camera: serial, epoch: Number(epoch) });
        expect(sha256(r.key)).toBe(k.keySha256);
      }
    }
  });

  it("the cameras' own state of the previous release opens: on epoch 2 with the recorded KIDs; they sync, and after an admin refresh move to epoch 3", async () => {
    for (const s of SERIALS) {
      expect(await cam(s).epoch(GROUP)).toBe(2);
      expect(Buffer.from((await cam(s).currentContentKey(GROUP)).kid).toString('hex')).toBe(expected.contentKeys['2']?.[s]?.kid);
      expect(await cam(s).sync(GROUP)).toEqual({ group: GROUP, status: 'current', epoch: 2 });
    }
    expect(await adm().json('POST', `/v1/admin/groups/${GROUP}/refresh`, {})).toEqual({ group: GROUP, epoch: 3 });
    for (const s of SERIALS) {
      expect(await cam(s).sync(GROUP)).toEqual({ group: GROUP, status: 'applied', epoch: 3 });
      const own = await cam(s).currentContentKey(GROUP);
      const kid = Buffer.from(own.kid).toString('hex');
      expect(kid).not.toBe(expected.contentKeys['2']?.[s]?.kid);
      expect(await release(kid)).toEqual({ kid, group: GROUP, camera: s, epoch: 3, key: Buffer.from(own.key).toString('hex') });
    }
    // the leader's challenge round on the new epoch
    const answering = cam('CAM-B').answerChallenges(GROUP, 'CAM-A', 3_000);
    expect(await cam('CAM-A').authRound(GROUP, [...SERIALS], 5_000)).toEqual({ verified: true, present: ['CAM-A', 'CAM-B'], missing: [], bad: [] });
    expect(await answering).toBe(1);
    expect(await adm().json('GET', `/v1/admin/groups/${GROUP}`)).toMatchObject({ epoch: 3, members: ['CAM-A', 'CAM-B'], lastAuth: { epoch: 3, verified: true, present: ['CAM-A', 'CAM-B'] } });
    await stop();
  });

  it('after the first run: schema at the latest version; the audit table is one verified chain holding the old rows as they were, then the new ones, under a signed checkpoint', () => {
    expect(schemaOf()).toBe(String(LATEST));
    afterFirstRun = chainRows();
    const check = verifyChain(afterFirstRun);
    expect(check).toEqual({ ok: true, head: afterFirstRun.at(-1)?.hash, entries: afterFirstRun.length });
    const entries = afterFirstRun.map((r) => JSON.parse(r.entry) as Record<string, unknown>);
    // the previous release's rows, chained as they were: same order, time, actor, action and detail
    expect(entries.slice(0, expected.audit.rows)).toEqual(expected.audit.entries.map((e) => ({ v: 1, seq: e.seq, at: new Date(e.at).toISOString(), actor: e.actor, action: e.action, detail: e.detail })));
    // then this run's: a refused release, the grant, four releases of the old keys, the refresh, two releases of the
    // new ones, the challenge round
    expect(entries.slice(expected.audit.rows).map((e) => [e['seq'], e['actor'], e['action']])).toEqual([
      [10, 'admin:ops', 'licence-denied'],
      [11, 'admin:ops', 'grant-add'],
      [12, 'admin:ops', 'licence'],
      [13, 'admin:ops', 'licence'],
      [14, 'admin:ops', 'licence'],
      [15, 'admin:ops', 'licence'],
      [16, 'kms', 'rekey'],
      [17, 'admin:ops', 'licence'],
      [18, 'admin:ops', 'licence'],
      [19, 'CAM-A', 'group-auth'],
    ]);
    const checkpoints = read((d) => d.prepare<[], { size: number; head: string }>('SELECT size, head FROM audit_checkpoints ORDER BY size').all());
    expect(checkpoints).toEqual([{ size: 19, head: afterFirstRun.at(-1)?.hash }]);
  });

  it('a second start on the upgraded file migrates nothing and works: the group on epoch 3, old and new keys released, the chain extended, not rewritten', async () => {
    const reopened = KmsDb.open(dbFile);
    try {
      expect(reopened.migratedFrom).toBe(LATEST);
    } finally {
      reopened.close();
    }
    await start();
    expect(await adm().json('GET', `/v1/admin/groups/${GROUP}`)).toMatchObject({ epoch: 3, members: ['CAM-A', 'CAM-B'], lastAuth: { epoch: 3, verified: true } });
    for (const s of SERIALS) expect(await cam(s).sync(GROUP)).toEqual({ group: GROUP, status: 'current', epoch: 3 });
    const old = expected.contentKeys['1']?.['CAM-B'] as { kid: string; keySha256: string };
    const r = await release(old.kid);
    expect({ camera: r.camera, epoch: r.epoch, key: sha256(r.key) }).toEqual({ camera: 'CAM-B', epoch: 1, key: old.keySha256 });
    await stop();
    expect(schemaOf()).toBe(String(LATEST));
    const rows = chainRows();
    expect(rows.slice(0, afterFirstRun.length)).toEqual(afterFirstRun);
    expect(rows.map((x) => (JSON.parse(x.entry) as { action: string }).action).slice(afterFirstRun.length)).toEqual(['licence']);
    expect(verifyChain(rows)).toEqual({ ok: true, head: rows.at(-1)?.hash, entries: 20 });
    expect(read((d) => d.prepare<[], { size: number }>('SELECT size FROM audit_checkpoints ORDER BY size').all().map((c) => c.size))).toEqual([19, 20]);
  });
});
