/**
 * The serving NVR's group commit (src/nvr/db.ts): commits write the WAL, and `durable()` syncs it off the main
 * thread — one sync for all the commits made before it started, one more for those made while it ran, none when
 * nothing changed. A command's open keeps synchronous=FULL. Camera sightings are written at most once a second,
 * and never lost from a read or a close.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NvrIndex } from '../../src/nvr/db.js';

const file = (): string => join(mkdtempSync(join(tmpdir(), 'kf-nvr-gc-')), 'nvr.sqlite');
const session = (i: number): string => i.toString(16).padStart(32, '0');

describe('NVR index group commit', () => {
  it('a command commits each transaction synced; the server groups the syncs of concurrent commits', async () => {
    const f = file();
    const cmd = NvrIndex.open(f, { create: true });
    expect(cmd.sqlite.pragma('synchronous', { simple: true })).toBe(2); // FULL
    await cmd.durable();
    expect(cmd.walSyncs).toBe(0);
    cmd.close();

    const ix = NvrIndex.open(f, { groupCommit: true });
    expect(ix.sqlite.pragma('synchronous', { simple: true })).toBe(1); // NORMAL: the WAL is synced by durable()
    await ix.durable();
    expect(ix.walSyncs).toBe(0); // nothing changed

    // one at a time: a sync each
    for (let i = 0; i < 3; i++) {
      ix.ensureSession('CAM-1', session(i), 1000 + i);
      await ix.durable();
    }
    expect(ix.walSyncs).toBe(3);

    // 40 objects committed while a sync runs: they share at most two more
    const before = ix.walSyncs;
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        await new Promise((r) => setImmediate(r));
        ix.ensureSession('CAM-2', session(i), 2000 + i);
        await ix.durable();
      }),
    );
    expect(ix.walSyncs - before).toBeGreaterThanOrEqual(1);
    expect(ix.walSyncs - before).toBeLessThanOrEqual(2);
    ix.close();

    const again = NvrIndex.openReadOnly(f);
    expect(again.allSessions().filter((s) => s.serial === 'CAM-2')).toHaveLength(40);
    again.close();
  });

  it('a camera sighting is written at most once a second, read back current, and kept at close', () => {
    const f = file();
    const ix = NvrIndex.open(f, { create: true, groupCommit: true });
    ix.seen('CAM-1', 10_000);
    const raw = (): number | undefined => ix.sqlite.prepare<[], { last_seen: number }>("SELECT last_seen FROM cameras WHERE serial = 'CAM-1'").get()?.last_seen;
    expect(raw()).toBe(10_000);
    ix.seen('CAM-1', 10_400);
    expect(raw()).toBe(10_000); // kept back
    expect(ix.cameras()).toEqual([{ serial: 'CAM-1', first_seen: 10_000, last_seen: 10_400 }]); // flushed for the read
    ix.seen('CAM-1', 11_500);
    expect(raw()).toBe(11_500); // a second after the last write: written at once
    ix.seen('CAM-1', 11_900);
    ix.close();
    const back = NvrIndex.openReadOnly(f);
    expect(back.cameras()).toEqual([{ serial: 'CAM-1', first_seen: 10_000, last_seen: 11_900 }]);
    back.close();
  });
});
