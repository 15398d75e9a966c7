/**
 * A fresh SoftHSM2 token per test, in a temp directory with its own SOFTHSM2_CONF, so tests never touch
 * /var/lib/softhsm and never see each other's objects.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface TestToken {
  readonly dir: string;
  readonly conf: string;
  readonly label: string;
  readonly pin: string;
  readonly soPin: string;
  /** A 0600 file holding the PIN, for pin-file= specs and libp11 pin-source=file: URIs. */
  readonly pinFile: string;
  /** `pkcs11:module=…;token=…;pin-file=…` */
  readonly spec: string;
  /** Environment for child processes (SOFTHSM2_CONF set). */
  readonly env: NodeJS.ProcessEnv;
  cleanup(): void;
}

/**
 * Creates a token. SOFTHSM2_CONF is process-wide for SoftHSM (read at C_Initialize), so every token made in one
 * process lives under the same configuration: the first call fixes the token directory for the process, and
 * later tokens are added beside the first with distinct labels.
 *
 * SoftHSM sees only the tokens that existed when the module was loaded into a process: create every token a
 * test file needs before its first in-process PKCS#11 use (child processes see all of them).
 */
let processConf: { dir: string; conf: string } | undefined;

export function createTestToken(label = `t${Math.random().toString(36).slice(2, 10)}`): TestToken {
  if (processConf === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'kf-softhsm-'));
    mkdirSync(join(dir, 'tokens'));
    const conf = join(dir, 'softhsm2.conf');
    writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
    process.env['SOFTHSM2_CONF'] = conf;
    processConf = { dir, conf };
  }
  const { dir, conf } = processConf;
  const pin = `pin-${Math.random().toString(36).slice(2, 12)}`;
  const soPin = `so-${Math.random().toString(36).slice(2, 12)}`;
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', pin], { env, stdio: 'pipe' });
  const pinFile = join(dir, `${label}.pin`);
  writeFileSync(pinFile, pin, { mode: 0o600 });
  return {
    dir,
    conf,
    label,
    pin,
    soPin,
    pinFile,
    spec: `pkcs11:module=${SOFTHSM_MODULE};token=${label};pin-file=${pinFile}`,
    env,
    cleanup: () => {
      try {
        execFileSync('softhsm2-util', ['--delete-token', '--token', label], { env, stdio: 'pipe' });
      } catch {
        // already gone
      }
      rmSync(pinFile, { force: true });
    },
  };
}

/**
 * A pool of tokens made up front (see createTestToken: SoftHSM only sees tokens that existed when the module
 * was loaded). `take()` hands out a fresh token per test; `cleanup()` deletes them all.
 */
export function createTokenPool(size: number): { take(): TestToken; cleanup(): void } {
  let pool: TestToken[] | undefined;
  const used: TestToken[] = [];
  return {
    take(): TestToken {
      pool ??= Array.from({ length: size }, () => createTestToken());
      const token = pool.shift();
      if (token === undefined) throw new Error(`test token pool of ${size} exhausted: make it larger`);
      used.push(token);
      return token;
    },
    cleanup(): void {
      for (const token of [...used, ...(pool ?? [])]) token.cleanup();
    },
  };
}
