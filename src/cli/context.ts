/** What every CLI command gets: where to write, and how to set the exit code. */
import type { Readable, Writable } from 'node:stream';

export interface CliContext {
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** Where secrets are read from (src/cli/secret-input.ts); absent: process.stdin. */
  readonly stdin?: Readable;
  /** Sets the process exit code for a command that completes but reports a negative result (exit 1). */
  setExitCode(code: number): void;
}

export function println(stream: Writable, line = ''): void {
  stream.write(`${line}\n`);
}
