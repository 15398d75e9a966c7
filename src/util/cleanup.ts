/**
 * Process-wide clean-up of temporaries. The atomic writers (src/util/fs.ts) register the temporary file or
 * directory they create and unregister it once it is renamed into place or removed; whatever is still registered
 * when the process ends — normally, through process.exit, or by SIGINT/SIGTERM once the CLI has installed its
 * handlers — is removed, so an interrupted `keyframe package` leaves no `.NAME.HEX.tmp` behind.
 *
 * A long-running command that stops cleanly on Ctrl-C (`keyframe record`) registers a stopper with onInterrupt:
 * the first signal calls it instead of ending the process; a second one ends the process as usual.
 */
import { rmSync } from 'node:fs';

const temporaries = new Map<string, 'file' | 'dir'>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', removeTemporariesSync);
}

/** Registers a temporary file or directory for removal at exit; returns the function that unregisters it. */
export function trackTemporary(path: string, kind: 'file' | 'dir' = 'file'): () => void {
  installExitHook();
  temporaries.set(path, kind);
  return () => void temporaries.delete(path);
}

/** The temporaries still registered (for tests and diagnostics). */
export function trackedTemporaries(): string[] {
  return [...temporaries.keys()];
}

/** Removes every registered temporary now, synchronously (safe in an exit or signal handler). */
export function removeTemporariesSync(): void {
  for (const [path, kind] of temporaries) {
    try {
      rmSync(path, { force: true, recursive: kind === 'dir' });
    } catch {
      // best effort: the process is ending
    }
    temporaries.delete(path);
  }
}

const stoppers: (() => void)[] = [];

/**
 * While registered, the first SIGINT or SIGTERM calls `stop` (the most recently registered one) instead of ending
 * the process; returns the function that unregisters it.
 */
export function onInterrupt(stop: () => void): () => void {
  stoppers.push(stop);
  return () => {
    const i = stoppers.lastIndexOf(stop);
    if (i >= 0) stoppers.splice(i, 1);
  };
}

const SIGNAL_EXIT: Readonly<Record<'SIGINT' | 'SIGTERM' | 'SIGPIPE', number>> = { SIGINT: 130, SIGTERM: 143, SIGPIPE: 141 };
let signalsInstalled = false;

/**
 * Ends the process as killed by `signal` (the shell reports 128 + its number: 130, 143, 141), after removing the
 * temporaries. Dying by the signal, rather than exiting, is what a shell loop needs to stop on Ctrl-C, and it does
 * not wait for a worker thread blocked on a read (from a pipe that never ends), as exit() would.
 */
export function dieBySignal(signal: 'SIGINT' | 'SIGTERM' | 'SIGPIPE'): never {
  removeTemporariesSync();
  // with no listener left, Node restores the default action (SIGPIPE included, which it otherwise ignores)
  const noop = (): void => undefined;
  process.on(signal, noop);
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
  // not reached unless the signal is blocked
  return process.exit(SIGNAL_EXIT[signal]);
}

/**
 * Installs the CLI's SIGINT/SIGTERM handling: a registered stopper gets the first signal; otherwise (or at the
 * second signal) the temporaries are removed and the process ends as killed by the signal (status 130, 143).
 */
export function installSignalCleanup(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  installExitHook();
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      const stop = stoppers[stoppers.length - 1];
      if (stop !== undefined && !stopping) {
        stopping = true;
        stop();
        return;
      }
      dieBySignal(signal);
    });
  }
}
