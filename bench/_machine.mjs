// Machine details recorded with every benchmark result.
import { execFileSync } from 'node:child_process';
import os from 'node:os';

function version(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0].trim();
  } catch {
    return 'unavailable';
  }
}

export function machine() {
  return {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    openssl: process.versions.openssl,
    softhsm: version('dpkg-query', ['-W', '-f=${Version}', 'softhsm2']),
  };
}

/** The machine note of a result: what the benchmark itself shares the cores with, and BENCH_NOTE (what else ran). */
export function benchNote(fixed) {
  const extra = process.env.BENCH_NOTE;
  return extra !== undefined && extra !== '' ? `${fixed}; ${extra}` : `${fixed}; nothing else noted (set BENCH_NOTE to say what else ran)`;
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
