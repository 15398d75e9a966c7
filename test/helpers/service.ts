/**
 * A keyframe service (`keyframe kms serve …`) as a real child process: started, its JSON log lines (pino) kept,
 * its URL read from the 'listening' line, its memory read from /proc, stopped by signal.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BIN } from './cli.js';

export interface LogLine {
  readonly level: number;
  readonly event?: string;
  readonly msg?: string;
  readonly [k: string]: unknown;
}

export interface ServiceProcess {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly pid: number;
  /** Every JSON log line so far. */
  lines(): LogLine[];
  /** Raw stderr so far. */
  stderr(): string;
  /** Resident set size now, and its peak (VmHWM), in bytes. */
  memory(): { rss: number; peak: number };
  /** Sends `signal` and waits for the exit; resolves with the exit code (null after a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

function parseLines(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const l of text.split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as LogLine);
    } catch {
      // a line being written
    }
  }
  return out;
}

export function startService(args: readonly string[], env: NodeJS.ProcessEnv = {}, execArgv: readonly string[] = []): Promise<ServiceProcess> {
  const proc = spawn(process.execPath, [...execArgv, BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const onData = (): void => {
      const line = parseLines(out).find((l) => l.event === 'listening');
      if (line === undefined) return;
      proc.stdout.off('data', onData);
      proc.off('exit', onExit);
      const pid = proc.pid as number;
      resolve({
        proc,
        url: line['url'] as string,
        pid,
        lines: () => parseLines(out),
        stderr: () => err,
        memory: () => {
          const status = readFileSync(`/proc/${pid}/status`, 'utf8');
          const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
          return { rss: kb('VmRSS'), peak: kb('VmHWM') };
        },
        stop: (signal = 'SIGTERM') =>
          new Promise((done) => {
            if (proc.exitCode !== null || proc.signalCode !== null) return done(proc.exitCode);
            proc.once('exit', (code) => done(code));
            proc.kill(signal);
          }),
      });
    };
    const onExit = (code: number | null): void => reject(new Error(`${args.join(' ')} exited ${String(code)} before listening: ${err}${out}`));
    proc.stdout.on('data', onData);
    proc.on('exit', onExit);
  });
}
