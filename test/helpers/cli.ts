/** Runs the real `keyframe` binary (compiled, in a child process) and inspects what it left on disk. */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { expect } from 'vitest';

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

/** `input`: written to the CLI's stdin, which is then closed (e.g. a password line); absent: stdin is left open. */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, cwd = REPO, input?: string): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    const child = execFile(process.execPath, [BIN, ...args], { cwd, env: { ...baseEnv(), ...env }, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolvePromise({ code, stdout, stderr });
    });
    if (input !== undefined) {
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(input);
    }
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

/** A `keyframe` child process with piped stdio, for tests that signal it or close its stdout. */
export function spawnCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, cwd = REPO): ChildProcessWithoutNullStreams & { result: Promise<CliResult & { signal: NodeJS.Signals | null }> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...baseEnv(), ...env }, stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stdout.on('error', () => undefined);
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const result = new Promise<CliResult & { signal: NodeJS.Signals | null }>((resolvePromise) => {
    child.on('close', (code, signal) => resolvePromise({ code: code ?? -1, signal, stdout, stderr }));
  });
  return Object.assign(child, { result });
}

/** Waits until `test` holds, polling every 20 ms, at most `ms`. */
export async function waitFor(test: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A refusal as the CLI must give it: exit `code`, nothing on stdout, one line `keyframe: …` matching `pattern`. */
export function expectOneLineError(r: CliResult, code: number, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stdout).toBe('');
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^keyframe: /);
  expect(lines[0]).toMatch(pattern);
}
