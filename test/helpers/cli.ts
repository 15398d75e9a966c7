/** Runs the real `keyframe` binary (compiled, in a child process) and inspects what it left on disk. */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '..', '..');
export const BIN = join(REPO, 'bin', 'keyframe.js');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The test process's environment without what changes the CLI's output (a debugging switch set in a shell). */
function baseEnv(): NodeJS.ProcessEnv {
  const { KEYFRAME_DEBUG: _debug, ...rest } = process.env;
  return rest;
}

export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, cwd = REPO): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: { ...baseEnv(), ...env }, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** Path → SHA-256 of every file below `dir` (empty map when `dir` does not exist). */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(dir)) return out;
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

/** Every file below `dir`, for scans. */
export function listFiles(dir: string): string[] {
  return [...snapshot(dir).keys()].map((p) => join(dir, p));
}
