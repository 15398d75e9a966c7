// util/sqlite.ts: a store's connection compiles each SQL text once (db.prepare answers the same statement), keeps a
// bounded number of them, and a statement whose mode the caller changes (prepareOwn) is never the shared one.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, prepareOwn } from '../../src/util/sqlite.js';
import type { OpenedStore } from '../../src/util/sqlite.js';

let dir: string;
let store: OpenedStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kf-sqlite-'));
  store = openStore({ file: join(dir, 's.db'), kind: 'kf-test', what: 'test store', create: true, migrations: [{ version: 1, description: 't', up: (db) => db.exec('CREATE TABLE t (a INTEGER, b TEXT)') }] });
  store.db.prepare('INSERT INTO t (a, b) VALUES (?, ?)').run(1, 'one');
});
afterEach(() => {
  store.db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('statements per connection', () => {
  it('the same SQL text is compiled once', () => {
    const a = store.db.prepare('SELECT a, b FROM t WHERE a = ?');
    const b = store.db.prepare('SELECT a, b FROM t WHERE a = ?');
    expect(b).toBe(a);
    expect(b.get(1)).toEqual({ a: 1, b: 'one' });
    expect(store.db.prepare('SELECT a, b FROM t WHERE a = ? ')).not.toBe(a);
  });

  it('a statement made with prepareOwn is its caller\'s: changing its mode leaves the shared one as it was', () => {
    const sql = 'SELECT a, b FROM t WHERE a = ?';
    const own = prepareOwn<[number], [number, string]>(store.db, sql).raw(true);
    expect(own.get(1)).toEqual([1, 'one']);
    expect(store.db.prepare(sql).get(1)).toEqual({ a: 1, b: 'one' });
    expect(prepareOwn(store.db, sql)).not.toBe(own);
  });

  it('keeps at most 256 statements: SQL built at run time does not grow it without end', () => {
    const first = store.db.prepare('SELECT 0 AS n');
    for (let i = 1; i <= 300; i++) expect(store.db.prepare(`SELECT ${i} AS n`).get()).toEqual({ n: i });
    // the oldest was dropped (a new statement now), and it still works
    const again = store.db.prepare('SELECT 0 AS n');
    expect(again).not.toBe(first);
    expect(again.get()).toEqual({ n: 0 });
  });

  it('a statement stays valid across a schema change', () => {
    const count = store.db.prepare('SELECT count(*) AS n FROM t');
    store.db.exec('ALTER TABLE t ADD COLUMN c TEXT; CREATE INDEX t_a ON t (a)');
    expect(store.db.prepare('SELECT count(*) AS n FROM t')).toBe(count);
    expect(count.get()).toEqual({ n: 1 });
  });
});
