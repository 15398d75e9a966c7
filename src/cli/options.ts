/** Parsers for CLI option values: each throws a UsageError naming the option and what was wrong. */
import { UsageError } from '../errors.js';
import type { KeyPairAlgorithm } from '../keystore/types.js';

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function parseIsoTime(value: string, option: string): Date {
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)) {
    throw new UsageError(`${option}: "${value}" is not an ISO 8601 time (e.g. 2026-11-22T10:00:00Z)`);
  }
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new UsageError(`${option}: "${value}" is not a valid time`);
  return new Date(ms);
}

export function parsePositiveInt(value: string, option: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${option}: "${value}" is not a positive whole number`);
  const n = Number.parseInt(value, 10);
  if (n <= 0 || n > max) throw new UsageError(`${option}: ${value} is out of range (1 … ${max})`);
  return n;
}

export function parseAlgorithm(value: string | undefined): KeyPairAlgorithm {
  if (value === undefined || value === 'ec-p256') return 'ec-p256';
  if (value === 'rsa-2048') return 'rsa-2048';
  throw new UsageError(`--alg: "${value}" is not one of ec-p256, rsa-2048`);
}

export function requireOption<T>(value: T | undefined, option: string): T {
  if (value === undefined) throw new UsageError(`${option} is required`);
  return value;
}
