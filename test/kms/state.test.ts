/**
 * Issue 10 §2, the KMS's state at rest: it starts only on state it can account for. A missing, empty, foreign or
 * shared database, a deleted sealing key, another KMS's key store, loose file modes: each refused with one line
 * naming the file (`keyframe kms serve`). A damaged group (a sealed row that does not open, an altered old
 * bundle) is named and not served while the other groups run. A first-release database upgrades in place.
 */
import { chmodSync, copyFileSync, existsSync, readFileSync, renameSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import { loadKmsConfig } from '../../src/kms/config.js';
import { KMS_MIGRATIONS } from '../../src/kms/db.js';
import { startKms } from '../../src/kms/server.js';
import type { RunningKms } from '../../src/kms/server.js';
import { runCli, expectOneLineError } from '../helpers/cli.js';
import { makeKmsSite, PIN_ENV } from './_setup.js';
import type { KmsSite } from './_setup.js';

let site: KmsSite;
let db: string;
const env = (): NodeJS.ProcessEnv => ({ [PIN_ENV]: process.env[PIN_ENV] });
const serve = (config = site.configPath): ReturnType<typeof runCli> => runCli(['kms', 'serve', '--config', config], env());


async function withKms<T>(fn: (kms: RunningKms) => Promise<T>, create = false): Promise<T> {
  const kms = await startKms(loadKmsConfig(site.configPath), { createDatabase: create });
  try {
    return await fn(kms);
  } finally {
    await kms.close();
  }
}

/** The database with `fn` applied while no KMS holds it. */
function edit(fn: (d: Database.Database) => void): void {
  const d = new Database(db);
  try {
    fn(d);
  } finally {
    d.close();
  }
}

beforeAll(async () => {
  site = await makeKmsSite(['CAM-A', 'CAM-B', 'CAM-C']);
  site.writeConfig(site.port, { batchWindow: '50ms' });
  db = join(site.work, 'kms.sqlite');
}, 240_000);

afterAll(() => undefined);

describe('KMS start-up on its state at rest', () => {
  it('no database: refused, naming the file and how to start a new KMS; nothing is created', async () => {
    expectOneLineError(await serve(), 2, new RegExp(`^keyframe: KMS database not found: ${db}: make a new KMS with keyframe kms init \\(kms serve --new-database starts an empty one here\\)$`));
    expect(existsSync(db)).toBe(false);
  });

  it('a new KMS (--new-database) makes its database 0600; two groups with several epochs; a second KMS on the same database is refused at once', async () => {
    await withKms(async (kms) => {
      const admin = await site.admin(kms.url);
      for (const s of ['CAM-A', 'CAM-B', 'CAM-C']) {
        const c = await site.camera(kms.url, s);
        await c.camera.enrol();
        await c.close();
      }
      await admin.json('POST', '/v1/admin/groups', { id: 'lobby', members: ['CAM-A', 'CAM-B'] });
      await admin.json('POST', '/v1/admin/groups', { id: 'yard', members: ['CAM-B', 'CAM-C'] });
      for (let i = 0; i < 3; i++) await admin.json('POST', '/v1/admin/groups/yard/refresh', {});
      admin.close();
      expect(statSync(db).mode & 0o777).toBe(0o600);
      expect(statSync(`${db}-wal`).mode & 0o777).toBe(0o600);
      expectOneLineError(await serve(), 1, new RegExp(`^keyframe: KMS database ${db} is in use by another process`));
    }, true);
  });

  it('loose modes, an empty file, a file that is not a database: each refused by name', async () => {
    chmodSync(db, 0o644);
    expectOneLineError(await serve(), 2, new RegExp(`keyframe: KMS database ${db} is accessible by other users \\(mode 0644\\): run chmod 600 ${db}`));
    chmodSync(db, 0o600);
    copyFileSync(db, `${db}.keep`);
    truncateSync(db, 0);
    expectOneLineError(await serve(), 2, new RegExp(`${db} is empty \\(0 bytes\\)`));
    writeFileSync(db, 'not a database at all, just text', { mode: 0o600 });
    expectOneLineError(await serve(), 2, new RegExp(`${db} is not an SQLite database`));
    renameSync(`${db}.keep`, db);
    chmodSync(db, 0o600);
  });

  it("a deleted sealing key is not replaced by a new one, and another KMS's key store does not open this database", async () => {
    const key = join(site.work, 'kms', 'keys', 'kms-state.key.json');
    renameSync(key, `${key}.away`);
    expectOneLineError(await serve(), 1, /holds sealed state but the key store .* has no 'kms-state' key: it was deleted, or this is not this KMS's key store/);
    expect(existsSync(key)).toBe(false);
    renameSync(`${key}.away`, key);
    // the database lost, the key kept: the message says a database existed
    renameSync(db, `${db}.away`);
    expectOneLineError(await serve(), 2, /KMS database not found: .* but the key store holds this KMS's sealing key, so a database existed: restore it from a backup/);
    renameSync(`${db}.away`, db);
    // the same database under another KMS identity: a key store without a sealing key, then one with its own
    await site.kmsIdentity('kms2', site.spec(join(site.work, 'kms2', 'keys')));
    const other = join(site.work, 'kms2.json');
    writeFileSync(other, readFileSync(site.configPath, 'utf8').replace('"identity": "kms"', '"identity": "kms2"'));
    expectOneLineError(await runCli(['kms', 'serve', '--config', other], env()), 1, /kms\.sqlite holds sealed state but the key store .*kms2.* has no 'kms-state' key/);
    writeFileSync(other, readFileSync(other, 'utf8').replace('"database": "kms.sqlite"', '"database": "kms2.sqlite"'));
    await (await startKms(loadKmsConfig(other), { createDatabase: true })).close(); // kms2's own database and sealing key
    writeFileSync(other, readFileSync(other, 'utf8').replace('"database": "kms2.sqlite"', '"database": "kms.sqlite"'));
    expectOneLineError(await runCli(['kms', 'serve', '--config', other], env()), 1, /the 'kms-state' key in .*kms2.* does not open .*kms\.sqlite: the database belongs to another KMS, or the key store does/);
  });

  it('a group whose sealed state does not open, or whose old bundle was altered, is named and not served; the others are', async () => {
    edit((d) => {
      const row = d.prepare<[], { core: Buffer }>("SELECT core FROM groups WHERE id = 'lobby'").get() as { core: Buffer };
      const core = Buffer.from(row.core);
      core[core.length - 3] = (core[core.length - 3] as number) ^ 0x40;
      d.prepare("UPDATE groups SET core = ? WHERE id = 'lobby'").run(core);
      const b = d.prepare<[], { bytes: Buffer }>("SELECT bytes FROM bundles WHERE group_id = 'yard' AND epoch = 2").get() as { bytes: Buffer };
      const bytes = Buffer.from(b.bytes);
      bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 0x01; // inside a wrap: it still decodes
      d.prepare("UPDATE bundles SET bytes = ? WHERE group_id = 'yard' AND epoch = 2").run(bytes);
    });
    await withKms(async (kms) => {
      const admin = await site.admin(kms.url);
      const status = await admin.json<{ damaged: { groups: Record<string, string> } }>('GET', '/v1/admin/status');
      expect(status.damaged.groups['lobby']).toMatch(/^group lobby: the sealed group state does not open with this KMS's sealing key/);
      expect(status.damaged.groups['yard']).toMatch(/^group yard: the bundle of epoch 2 was altered: epoch 3 names another hash for it/);
      await expect(admin.json('GET', '/v1/admin/groups/lobby')).rejects.toMatchObject({ code: ErrorCodes.UNAVAILABLE, message: expect.stringContaining('restore the KMS database from a backup') as unknown });
      const cam = await site.camera(kms.url, 'CAM-B');
      await expect(cam.camera.sync('yard')).rejects.toMatchObject({ code: ErrorCodes.UNAVAILABLE });
      // a third group, made now, works
      await admin.json('POST', '/v1/admin/groups', { id: 'gate', members: ['CAM-B'] });
      expect((await cam.camera.sync('gate')).epoch).toBe(1);
      await cam.close();
      admin.close();
    });
  });

  it('a database of the first release (schema 1, no kind, no sealing check) is upgraded in place and keeps working', async () => {
    edit((d) => {
      d.prepare("DELETE FROM groups WHERE id IN ('lobby', 'yard')").run();
      d.prepare("DELETE FROM bundles WHERE group_id IN ('lobby', 'yard')").run();
      d.prepare("DELETE FROM secrets WHERE group_id IN ('lobby', 'yard')").run();
      // what the first release left: its tables, meta with the schema version only
      d.prepare("DELETE FROM meta WHERE key <> 'schema'").run();
      d.prepare("UPDATE meta SET value = '1' WHERE key = 'schema'").run();
      d.exec('DROP TABLE alarms');
      // schemas 3 (the audit chain) and 4 (accounts) undone too
      d.exec('DROP TABLE grants; DROP TABLE sessions; DROP TABLE users;');
      d.exec('DROP INDEX audit_by_action; DROP TABLE audit_checkpoints; ALTER TABLE audit DROP COLUMN entry; ALTER TABLE audit DROP COLUMN leaf; ALTER TABLE audit DROP COLUMN prev; ALTER TABLE audit DROP COLUMN hash;');
    });
    await withKms(async (kms) => {
      const cam = await site.camera(kms.url, 'CAM-B');
      const admin = await site.admin(kms.url);
      await admin.json('POST', '/v1/admin/groups/gate/refresh', {});
      expect((await cam.camera.sync('gate')).epoch).toBe(2);
      await cam.close();
      admin.close();
    });
    edit((d) => {
      const meta = Object.fromEntries(d.prepare<[], { key: string; value: string }>('SELECT key, value FROM meta').all().map((r) => [r.key, r.value]));
      expect(meta).toMatchObject({ schema: String(KMS_MIGRATIONS.at(-1)?.version), kind: 'keyframe-kms' });
      expect(meta['seal-check']).toMatch(/^[A-Za-z0-9+/=]+$/);
    });
  });
});
