/** Durations in config files and options: "250ms", "30s", "5m", "1h", "2d", or a number of milliseconds. */
import { InputError } from '../errors.js';

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(value: unknown, what: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === 'string') {
    const m = /^(\d+)(ms|s|m|h|d)$/.exec(value.trim());
    if (m !== null) return Number(m[1]) * (UNITS[m[2] as string] as number);
  }
  throw new InputError(`${what}: "${String(value)}" is not a duration (e.g. 250ms, 30s, 1h, or milliseconds)`);
}
