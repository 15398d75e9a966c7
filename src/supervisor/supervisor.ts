/**
 * A process supervisor for `npm start` (issue 12 §3): runs the KMS, the NVR and the camera agents as child
 * processes, each started once the ones it depends on are ready, restarted with back-off when it dies unexpectedly,
 * and stopped in reverse order (cameras first, so that they end their sessions while the NVR still listens).
 *
 * - Ready: a child is ready when a line of its output matches its `ready` pattern (or at once without one).
 * - Crash loops: a child that ends with status 2 (a usage, configuration or I/O error: the CLI's convention) before
 *   it was ever ready is not restarted — the start fails with its last line, which names the problem. Any other
 *   unexpected end is restarted after 1 s, doubling to 30 s, reset once it has run for a minute.
 * - Output: each child's stdout and stderr go to LOGDIR/NAME.log (moved to NAME.log.1 past `maxLogBytes`), so
 *   memory stays bounded however chatty a child is; the supervisor keeps only each child's last line.
 * - Orphans: children run in their own process group (a Ctrl-C in the terminal reaches only the supervisor, which
 *   stops them in order) with an IPC channel; the keyframe CLI ends itself when that channel closes, so a
 *   supervisor that is killed outright leaves no process behind.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createWriteStream, mkdirSync, renameSync, statSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, KeyframeError } from '../errors.js';

/** The environment variable that tells a keyframe child it is supervised (it ends when the IPC channel closes). */
export const SUPERVISED_ENV = 'KEYFRAME_SUPERVISED';

export interface ChildSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** A line of output that says the child is ready; without, it is ready once spawned. */
  readonly ready?: RegExp;
  /** Names of the children that must be ready first. */
  readonly after?: readonly string[];
  /** Runs once, after those it waits for are ready and before the first spawn (e.g. enrolment at a KMS just started). */
  readonly prepare?: () => Promise<void>;
}

export type ChildState = 'waiting' | 'starting' | 'ready' | 'restarting' | 'stopping' | 'stopped' | 'failed';

export interface ChildStatus {
  readonly name: string;
  readonly state: ChildState;
  readonly pid: number | undefined;
  readonly restarts: number;
  /** The last line the child wrote (for messages). */
  readonly lastLine: string;
  readonly log: string;
}

export interface SupervisorOptions {
  readonly logDir: string;
  /** How long a child may take to become ready (default 60 s). */
  readonly readyTimeoutMs?: number;
  /** How long a child has to end after SIGTERM before SIGKILL (default 15 s). */
  readonly stopTimeoutMs?: number;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number; readonly resetAfterMs: number };
  /** Per-child log size before it is rotated (default 16 MiB). */
  readonly maxLogBytes?: number;
}

interface Child {
  readonly spec: ChildSpec;
  state: ChildState;
  proc: ChildProcess | undefined;
  restarts: number;
  lastLine: string;
  startedAt: number;
  everReady: boolean;
  delayMs: number;
  timer: NodeJS.Timeout | undefined;
  log: WriteStream | undefined;
  logBytes: number;
  readyWaiters: { resolve: () => void; reject: (e: Error) => void }[];
}

const DEFAULT_BACKOFF = { initialMs: 1000, maxMs: 30_000, resetAfterMs: 60_000 };
const MAX_LINE = 4096;

/** Events: 'state' (status: ChildStatus), 'exit' (name, code, signal). */
export class Supervisor extends EventEmitter {
  private readonly children = new Map<string, Child>();
  private stopping = false;

  constructor(
    specs: readonly ChildSpec[],
    private readonly o: SupervisorOptions,
  ) {
    super();
    for (const spec of specs) {
      if (this.children.has(spec.name)) throw new KeyframeError(ErrorCodes.INPUT, `two children are named ${spec.name}`);
      if (!/^[A-Za-z0-9._-]+$/.test(spec.name)) throw new KeyframeError(ErrorCodes.INPUT, `child name ${JSON.stringify(spec.name)}: letters, digits, . _ - only`);
      this.children.set(spec.name, { spec, state: 'waiting', proc: undefined, restarts: 0, lastLine: '', startedAt: 0, everReady: false, delayMs: 0, timer: undefined, log: undefined, logBytes: 0, readyWaiters: [] });
    }
    for (const spec of specs) for (const dep of spec.after ?? []) if (!this.children.has(dep)) throw new KeyframeError(ErrorCodes.INPUT, `${spec.name} waits for ${dep}, which is not a child`);
    this.order(); // refuses cycles up front
  }

  /** Children in start order (each after those it waits for); a cycle is refused. */
  order(): string[] {
    const done = new Set<string>();
    const out: string[] = [];
    const visit = (name: string, path: string[]): void => {
      if (done.has(name)) return;
      if (path.includes(name)) throw new KeyframeError(ErrorCodes.INPUT, `children wait for each other: ${[...path, name].join(' → ')}`);
      for (const dep of this.children.get(name)?.spec.after ?? []) visit(dep, [...path, name]);
      done.add(name);
      out.push(name);
    };
    for (const name of this.children.keys()) visit(name, []);
    return out;
  }

  status(): ChildStatus[] {
    return [...this.children.values()].map((c) => this.statusOf(c));
  }

  private statusOf(c: Child): ChildStatus {
    return { name: c.spec.name, state: c.state, pid: c.proc?.pid, restarts: c.restarts, lastLine: c.lastLine, log: this.logPath(c) };
  }

  private logPath(c: Child): string {
    return join(this.o.logDir, `${c.spec.name}.log`);
  }

  private setState(c: Child, state: ChildState): void {
    c.state = state;
    this.emit('state', this.statusOf(c));
  }

  /** Starts every child in order, each once those it waits for are ready; rejects (after stopping all) if one fails. */
  async start(): Promise<void> {
    mkdirSync(this.o.logDir, { recursive: true, mode: 0o700 });
    try {
      for (const name of this.order()) {
        const c = this.children.get(name) as Child;
        if (this.stopping) throw new KeyframeError(ErrorCodes.UNAVAILABLE, 'stopped while starting');
        await c.spec.prepare?.();
        this.spawnChild(c);
        await this.whenReady(c);
      }
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  private whenReady(c: Child): Promise<void> {
    if (c.state === 'ready') return Promise.resolve();
    const timeoutMs = this.o.readyTimeoutMs ?? 60_000;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new KeyframeError(ErrorCodes.UNAVAILABLE, `${c.spec.name} was not ready within ${Math.round(timeoutMs / 1000)} s (see ${this.logPath(c)}): ${c.lastLine}`)), timeoutMs);
      c.readyWaiters.push({
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  private openLog(c: Child): void {
    const path = this.logPath(c);
    let size = 0;
    try {
      size = statSync(path).size;
    } catch {
      // a new log
    }
    if (size > (this.o.maxLogBytes ?? 16 << 20)) {
      renameSync(path, `${path}.1`);
      size = 0;
    }
    c.log = createWriteStream(path, { flags: 'a', mode: 0o600 });
    c.log.on('error', () => undefined); // a full disk must not crash the supervisor; the child's own errors say why
    c.logBytes = size;
  }

  private write(c: Child, chunk: Buffer): void {
    if (c.log === undefined) return;
    c.log.write(chunk);
    c.logBytes += chunk.length;
    if (c.logBytes > (this.o.maxLogBytes ?? 16 << 20)) {
      // rename first: what the old stream still has to flush goes to the same file, now NAME.log.1
      const path = this.logPath(c);
      c.log.end();
      try {
        renameSync(path, `${path}.1`);
      } catch {
        // the log directory went away: keep writing where we can
      }
      c.log = createWriteStream(path, { flags: 'a', mode: 0o600 });
      c.log.on('error', () => undefined);
      c.logBytes = 0;
    }
  }

  private spawnChild(c: Child): void {
    this.openLog(c);
    this.setState(c, 'starting');
    c.startedAt = Date.now();
    const proc = spawn(c.spec.command, [...c.spec.args], {
      cwd: c.spec.cwd,
      env: { ...process.env, ...c.spec.env, [SUPERVISED_ENV]: '1' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
    });
    c.proc = proc;
    let partial = '';
    const onData = (chunk: Buffer): void => {
      this.write(c, chunk);
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = (lines.pop() ?? '').slice(-MAX_LINE); // a line without an end stays bounded
      for (const line of lines) this.onLine(c, line.slice(0, MAX_LINE));
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    proc.on('error', (e) => {
      c.lastLine = `cannot start ${c.spec.command}: ${e.message}`;
    });
    proc.on('exit', (code, signal) => this.onExit(c, proc, code, signal));
    if (c.spec.ready === undefined) this.markReady(c);
  }

  private onLine(c: Child, line: string): void {
    const text = line.trim();
    if (text === '') return;
    c.lastLine = text;
    if (c.state === 'starting' && c.spec.ready?.test(text) === true) this.markReady(c);
  }

  private markReady(c: Child): void {
    c.everReady = true;
    this.setState(c, 'ready');
    for (const w of c.readyWaiters.splice(0)) w.resolve();
  }

  private onExit(c: Child, proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (c.proc !== proc) return;
    c.proc = undefined;
    c.log?.end();
    c.log = undefined;
    this.emit('exit', c.spec.name, code, signal);
    if (this.stopping || c.state === 'stopping') {
      this.setState(c, 'stopped');
      return;
    }
    const why = `${c.spec.name} ended (${signal ?? `status ${code ?? '?'}`}): ${c.lastLine || 'no output'}`;
    if (code === 2 && !c.everReady) {
      this.setState(c, 'failed');
      for (const w of c.readyWaiters.splice(0)) w.reject(new KeyframeError(ErrorCodes.UNAVAILABLE, why));
      return;
    }
    const backoff = this.o.backoff ?? DEFAULT_BACKOFF;
    c.delayMs = Date.now() - c.startedAt >= backoff.resetAfterMs || c.delayMs === 0 ? backoff.initialMs : Math.min(backoff.maxMs, c.delayMs * 2);
    c.restarts++;
    this.setState(c, 'restarting');
    c.timer = setTimeout(() => {
      c.timer = undefined;
      if (!this.stopping) this.spawnChild(c);
    }, c.delayMs);
  }

  /** Stops every child, in reverse start order: SIGTERM, then SIGKILL after the stop timeout. Idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const name of this.order().reverse()) {
      const c = this.children.get(name) as Child;
      if (c.timer !== undefined) clearTimeout(c.timer);
      c.timer = undefined;
      for (const w of c.readyWaiters.splice(0)) w.reject(new KeyframeError(ErrorCodes.UNAVAILABLE, `${c.spec.name}: stopped before it was ready`));
      const proc = c.proc;
      if (proc === undefined) {
        if (c.state !== 'failed') this.setState(c, 'stopped');
        continue;
      }
      this.setState(c, 'stopping');
      const ended = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      signalGroup(proc, 'SIGTERM');
      const timeout = this.o.stopTimeoutMs ?? 15_000;
      const killed = setTimeout(() => signalGroup(proc, 'SIGKILL'), timeout);
      await ended;
      clearTimeout(killed);
      signalGroup(proc, 'SIGKILL'); // anything the child left in its group (an ffmpeg it spawned)
    }
  }
}

/** Signals the child's whole process group (it was spawned detached, as the leader of its own group). */
function signalGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  if (proc.pid === undefined) return;
  try {
    process.kill(-proc.pid, signal);
  } catch {
    // already gone
  }
}

/**
 * For a keyframe process started by the supervisor: end (as on SIGTERM) when the supervisor's IPC channel closes,
 * so that a supervisor killed outright leaves no process behind. The channel does not keep the process alive.
 */
export function endWithSupervisor(): void {
  if (process.env[SUPERVISED_ENV] !== '1' || process.send === undefined) return;
  process.channel?.unref();
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}
