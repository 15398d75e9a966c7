/**
 * Secrets typed at the command line — passwords, TOTP codes — never from argv (other users see it in `ps`, shells
 * keep it in their history) and never echoed, printed or logged.
 *
 * - On a terminal: the prompt goes to stderr and the line is read with echo off (raw mode): Enter ends it,
 *   Backspace deletes a character, Ctrl-U the whole line, Ctrl-C (or Ctrl-D on an empty line) aborts with one
 *   line `keyframe: …` (exit 2); the terminal's mode is restored in every case.
 * - Otherwise (a pipe, a file): one line is read from stdin, without a prompt, so that scripts and tests can pipe
 *   it in (`printf '%s\n' "$PW" | keyframe user add …`); successive reads take successive lines. The process's own
 *   stdin is read synchronously, byte by byte, from file descriptor 0: nothing beyond the line is consumed, and no
 *   stream is left reading ahead (which would keep the process alive while the writer holds the pipe open).
 */
import { readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { isatty } from 'node:tty';
import { InputError, UsageError, errnoCode, ioError } from '../errors.js';
import type { CliContext } from './context.js';

/** Longer lines are not a secret anyone types: refused rather than buffered without bound. */
const MAX_LINE = 4096;

/** A terminal stream: tty.ReadStream has these (a test can fake them). */
interface TtyLike {
  readonly isTTY?: boolean;
  readonly isRaw?: boolean;
  setRawMode?(mode: boolean): unknown;
}

/** Whether secrets are typed at a terminal (then a new password is asked twice). */
export function isInteractive(ctx: Pick<CliContext, 'stdin'>): boolean {
  // process.stdin is not touched unless it is a terminal: opening it on a pipe would make fd 0 non-blocking
  const s: TtyLike = (ctx.stdin as TtyLike | undefined) ?? (isatty(0) ? process.stdin : {});
  return s.isTTY === true && typeof s.setRawMode === 'function';
}

export interface SecretOptions {
  /** What is read, for errors ("password for olga"); default: the prompt without its colon. */
  readonly what?: string;
}

/** Reads one secret: from the terminal with echo off, or one line of stdin. */
export async function readSecret(prompt: string, ctx: Pick<CliContext, 'stdin' | 'stderr'>, options: SecretOptions = {}): Promise<string> {
  const what = options.what ?? prompt.replace(/[:\s]+$/, '').replace(/^[A-Z](?=[a-z])/, (c) => c.toLowerCase());
  if (isInteractive(ctx)) return readHidden(ctx.stdin ?? process.stdin, prompt, what, ctx.stderr);
  const line = ctx.stdin !== undefined ? await readLine(ctx.stdin, what) : readLineFd0(what);
  if (line === undefined) throw new UsageError(`no ${what} on standard input (type it at a terminal, or pipe it in: one line)`);
  return line;
}

/**
 * Reads a new secret: on a terminal twice (the two must match), from a pipe once.
 */
export async function readNewSecret(prompt: string, confirmPrompt: string, ctx: Pick<CliContext, 'stdin' | 'stderr'>, options: SecretOptions = {}): Promise<string> {
  const first = await readSecret(prompt, ctx, options);
  if (!isInteractive(ctx)) return first;
  const second = await readSecret(confirmPrompt, ctx, options);
  if (first !== second) throw new UsageError(`the two entries of the ${options.what ?? 'password'} do not match: nothing changed`);
  return first;
}

/** One line of file descriptor 0 (not a terminal), read synchronously one byte at a time; undefined at its end. */
function readLineFd0(what: string): string | undefined {
  const bytes: number[] = [];
  const one = Buffer.alloc(1);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(0, one, 0, 1, null);
      } catch (e) {
        const code = errnoCode(e);
        if (code === 'EAGAIN') {
          // a non-blocking descriptor with nothing yet: wait a little, the writer is on its way
          Atomics.wait(pause, 0, 0, 10);
          continue;
        }
        if (code === 'EOF' || code === 'EBADF') n = 0;
        else throw ioError(e, 'standard input', 'read') ?? e;
      }
      if (n === 0) return bytes.length > 0 ? Buffer.from(bytes).toString('utf8').replace(/\r$/, '') : undefined;
      const b = one[0] as number;
      if (b === 0x0a) return Buffer.from(bytes).toString('utf8').replace(/\r$/, '');
      if (bytes.length >= MAX_LINE) throw new InputError(`the ${what} read from standard input is longer than ${MAX_LINE} bytes`);
      bytes.push(b);
    }
  } finally {
    bytes.fill(0);
    one.fill(0);
  }
}

/** One line of a non-terminal stream (without its \n or \r\n); undefined at the end of the input. */
function readLine(stream: Readable, what: string): Promise<string | undefined> {
  if (stream.readableEnded || stream.destroyed) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.pause();
    };
    const onData = (chunk: Buffer | string): void => {
      buf = Buffer.concat([buf, typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk]);
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        if (buf.length > MAX_LINE) {
          done();
          reject(new InputError(`the ${what} read from standard input is longer than ${MAX_LINE} bytes`));
        }
        return;
      }
      done();
      const rest = buf.subarray(nl + 1);
      if (rest.length > 0) stream.unshift(rest);
      if (nl > MAX_LINE) {
        reject(new InputError(`the ${what} read from standard input is longer than ${MAX_LINE} bytes`));
        return;
      }
      resolve(buf.subarray(0, nl).toString('utf8').replace(/\r$/, ''));
    };
    const onEnd = (): void => {
      done();
      resolve(buf.length > 0 ? buf.toString('utf8').replace(/\r$/, '') : undefined);
    };
    const onError = (e: unknown): void => {
      done();
      reject(e instanceof Error ? e : new Error(String(e)));
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.resume();
  });
}

/** A line typed at a terminal with echo off. */
function readHidden(stream: Readable & TtyLike, prompt: string, what: string, stderr: CliContext['stderr']): Promise<string> {
  return new Promise((resolve, reject) => {
    const decoder = new StringDecoder('utf8');
    const wasRaw = stream.isRaw === true;
    const chars: string[] = [];
    /** Inside an escape sequence (arrow keys …): 1 after ESC, 2 after ESC [. */
    let escape = 0;
    const finish = (error?: Error): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      try {
        stream.setRawMode?.(wasRaw);
      } finally {
        stream.pause();
        stderr.write('\n');
      }
      chars.fill('');
      if (error !== undefined) reject(error);
    };
    const onData = (chunk: Buffer | string): void => {
      const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
      for (const c of text) {
        if (escape === 1) {
          escape = c === '[' || c === 'O' ? 2 : 0;
          continue;
        }
        if (escape === 2) {
          if (c >= '@' && c <= '~') escape = 0;
          continue;
        }
        if (c === '\r' || c === '\n') {
          const value = chars.join('');
          finish();
          resolve(value);
          return;
        }
        if (c === '\u0003') {
          finish(new UsageError(`interrupted: no ${what} read`));
          return;
        }
        if (c === '\u0004') {
          if (chars.length === 0) {
            finish(new UsageError(`no ${what} typed`));
            return;
          }
          continue;
        }
        if (c === '\u007f' || c === '\b') chars.pop();
        else if (c === '\u0015') chars.length = 0;
        else if (c === '\u001b') escape = 1;
        else if (c >= ' ') {
          if (chars.length >= MAX_LINE) {
            finish(new InputError(`the ${what} is longer than ${MAX_LINE} characters`));
            return;
          }
          chars.push(c);
        }
      }
    };
    const onEnd = (): void => finish(new UsageError(`no ${what} typed`));
    const onError = (e: unknown): void => finish(e instanceof Error ? e : new Error(String(e)));
    stderr.write(prompt);
    stream.setRawMode?.(true);
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.resume();
  });
}
