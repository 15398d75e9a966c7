/**
 * The NVR index's schema: an index of an older schema is upgraded in place by the ordered migrations (rows kept),
 * one written by a newer keyframe is refused with a named error, and another kind of store is not taken for one.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { NVR_MIGRATIONS, NvrIndex } from '../../src/nvr/db.js';
import { KmsDb } from '../../src/kms/db.js';
import { SchemaTooNewError, StoreError } from '../../src/util/sqlite.js';

const dir = (): string => mkdtempSync(join(tmpdir(), 'kf-nvr-mig-'));

describe('NVR index migrations', () => {
  it('upgrades an index of schema 1 in place, keeping its rows', () => {
    const file = join(dir(), 'nvr.sqlite');
    const old = NvrIndex.open(file, { create: true, migrations: NVR_MIGRATIONS.slice(0, 1) });
    expect(old.version).toBe(1);
    old.seen('CAM-1', 1000);
    old.ensureSession('CAM-1', '0123456789abcdef0123456789abcdef', 1000);
    old.close();
    // schema 1 has no quarantine table
    const raw = new Database(file, { readonly: true });
    expect(raw.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'quarantine'").get()).toEqual({ n: 0 });
    raw.close();

    const upgraded = NvrIndex.open(file);
    expect(upgraded.migratedFrom).toBe(1);
    expect(upgraded.version).toBe(NVR_MIGRATIONS.at(-1)?.version);
    expect(upgraded.cameras().map((c) => c.serial)).toEqual(['CAM-1']);
    expect(upgraded.session('CAM-1', '0123456789abcdef0123456789abcdef')?.skew_ms).toBeNull();
    expect(upgraded.counts().quarantined).toBe(0);
    upgraded.close();
    // a read-only open (nvr status) reads it once upgraded
    const ro = NvrIndex.openReadOnly(file);
    expect(ro.counts().cameras).toBe(1);
    ro.close();
  });

  it('refuses an index written by a newer keyframe, by name, in both opens', () => {
    const file = join(dir(), 'nvr.sqlite');
    NvrIndex.open(file, { create: true }).close();
    const raw = new Database(file);
    raw.prepare("UPDATE meta SET value = '99' WHERE key = 'schema'").run();
    raw.close();
    expect(() => NvrIndex.open(file)).toThrow(SchemaTooNewError);
    expect(() => NvrIndex.open(file)).toThrow(/schema version 99, written by a newer keyframe/);
    expect(() => NvrIndex.openReadOnly(file)).toThrow(SchemaTooNewError);
  });

  it('refuses another kind of store and reading an old schema read-only', () => {
    const d = dir();
    const kms = join(d, 'kms.sqlite');
    KmsDb.open(kms, { create: true }).close();
    expect(() => NvrIndex.open(kms)).toThrow(/is a keyframe-kms store, not a keyframe-nvr one/);
    expect(() => NvrIndex.openReadOnly(kms)).toThrow(StoreError);
    const file = join(d, 'old.sqlite');
    NvrIndex.open(file, { create: true, migrations: NVR_MIGRATIONS.slice(0, 1) }).close();
    expect(() => NvrIndex.openReadOnly(file)).toThrow(/start the NVR once/);
  });
});
