/**
 * A lock shared by every copy of the suite on this machine, for the few tests that need the machine's cores to
 * themselves for a while (the 20-camera chaos acceptance: 20 camera agents, 16 encoders, an NVR killed and
 * restarted every few seconds). Two copies of the suite started together run their files in the same order, so
 * without it their heaviest tests coincide; with it, one waits for the other, and everything else still overlaps.
 *
 * The lock is an exclusive SQLite transaction on a file under /tmp (not under TMPDIR, which each copy of `npm test`
 * sets to its own directory): SQLite's locks are the kernel's, released when the holder exits however it exits, so
 * a killed run leaves no stale lock behind.
 */
import Database from 'better-sqlite3';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits (up to `waitMs`) for the machine-wide lock `name`; resolves with its release. */
export async function machineLock(name: string, waitMs: number): Promise<{ release: () => void; waitedMs: number }> {
  if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`lock name ${name}: lower-case letters, digits and - only`);
  const file = `/tmp/keyframe-test-lock-${name}.sqlite`;
  const started = Date.now();
  const db = new Database(file, { timeout: 0 });
  for (;;) {
    try {
      db.exec('BEGIN EXCLUSIVE');
      let held = true;
      return {
        waitedMs: Date.now() - started,
        release: () => {
          if (!held) return;
          held = false;
          db.exec('ROLLBACK');
          db.close();
        },
      };
    } catch (e) {
      if ((e as { code?: string }).code !== 'SQLITE_BUSY') {
        db.close();
        throw e;
      }
      if (Date.now() - started > waitMs) {
        db.close();
        throw new Error(`machine lock ${name} (${file}) still held by another run after ${Math.round(waitMs / 1000)} s`, { cause: e });
      }
      await sleep(500);
    }
  }
}
