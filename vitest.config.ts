import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

const slow = process.env['KEYFRAME_SLOW'] === '1';

/**
 * Test processes start with an OpenSSL configuration that registers the pkcs11 engine (see
 * src/pki/tls.ts, pkcs11OpenSslConfig): Node 20 loads an engine by path only once per process, and the suites
 * build several TLS contexts with keys in SoftHSM tokens. The file mirrors pkcs11OpenSslConfig.
 */
function opensslExecArgv(): string[] {
  const engine = '/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so';
  const module = '/usr/lib/softhsm/libsofthsm2.so';
  if (!existsSync(engine) || !existsSync(module)) return [];
  const file = join(mkdtempSync(join(tmpdir(), 'kf-vitest-ossl-')), 'openssl.cnf');
  writeFileSync(
    file,
    ['nodejs_conf = keyframe_init', '[keyframe_init]', 'engines = keyframe_engines', '[keyframe_engines]', 'pkcs11 = keyframe_pkcs11', '[keyframe_pkcs11]', 'engine_id = pkcs11', `dynamic_path = ${engine}`, `MODULE_PATH = ${module}`, 'init = 0', ''].join('\n'),
  );
  return [`--openssl-config=${file}`];
}

/**
 * Two test files at a time at least: vitest's default (one less than the cores) runs one file at a time on CI's
 * two cores, where most of the suite waits on ffmpeg, Chromium, TLS peers and timers rather than computing. At most
 * four, so that the files' own child processes keep a core between them.
 */
const workers = Math.min(4, Math.max(2, availableParallelism()));

export default defineConfig({
  test: {
    include: slow ? ['test/**/*.test.ts', 'test/**/*.slow.ts'] : ['test/**/*.test.ts'],
    testTimeout: 240_000,
    hookTimeout: 240_000,
    pool: 'forks',
    maxWorkers: workers,
    execArgv: opensslExecArgv(),
    setupFiles: ['reflect-metadata'],
    reporters: ['default'],
  },
});
