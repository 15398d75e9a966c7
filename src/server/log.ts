/**
 * Structured logs (pino, JSON lines): one logger per service, named after it. Nothing secret is ever logged —
 * keys, tokens, passwords and PINs stay out of every call site; request bodies are never logged.
 *
 * `LimitReporter` logs a limit that bites (a connection shed, a handshake or request timed out, a body too large,
 * a relay quota full) at most once per interval and kind, with how often it bit since the last line, so that an
 * attack is visible in the log without the log becoming the attacker's amplifier.
 */
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** pino level: fatal, error, warn, info, debug, trace, silent (default $KEYFRAME_LOG_LEVEL or info). */
  readonly level?: string;
  /** Where lines go (default stdout, written synchronously so that nothing is lost at exit). */
  readonly destination?: DestinationStream;
}

export function createLogger(name: string, options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env['KEYFRAME_LOG_LEVEL'] ?? 'info';
  return pino({ name, level, base: { service: name } }, options.destination ?? pino.destination({ dest: 1, sync: true }));
}

/** A logger that writes nothing (in-process services in tests and tools). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export class LimitReporter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** A limit of `kind` bit; logged now, or counted until the interval has passed. */
  hit(kind: string, detail: Record<string, unknown> = {}): void {
    const t = this.now();
    const seen = this.last.get(kind);
    if (seen !== undefined && t - seen.at < this.intervalMs) {
      seen.suppressed++;
      return;
    }
    this.last.set(kind, { at: t, suppressed: 0 });
    this.log.warn({ event: 'limit', limit: kind, ...detail, ...(seen !== undefined && seen.suppressed > 0 ? { alsoSince: seen.suppressed } : {}) }, `limit reached: ${kind}`);
  }
}
