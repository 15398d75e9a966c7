/**
 * What a record's signature and hash are computed over (pure, no I/O, no Node APIs: the viewer web app checks
 * records in the browser with the same code): canonical JSON, and the `prev` of a session's first record.
 */

/** The `prev` of a session's first record: 64 zeros. */
export const GENESIS = '0'.repeat(64);

/** Canonical JSON: keys sorted at every level, no white space. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}
