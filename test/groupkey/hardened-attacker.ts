/**
 * The attacker of the hardened-mode tests: holds some keys (a departed camera's whole state, a coalition's, a
 * leader's) and every bundle it saw on the wire, and tries EVERY key it holds against EVERY wrap it sees — as
 * K_i^wrap would be used (the key itself) and as an interior node key would be (KEK(key)) — adding whatever
 * opens to what it holds, until nothing new opens. Then tests compare what it holds with the real secrets.
 */
import { decodeBundle } from '../../src/groupkey/hardened/bundle.js';
import type { RekeyBundle } from '../../src/groupkey/hardened/bundle.js';
import { nodeKek, toHex } from '../../src/groupkey/hardened/kdf.js';
import { openWrap } from '../../src/groupkey/hardened/wrap.js';

export interface Closure {
  /** Everything the attacker holds at the end, by hex. */
  readonly keys: ReadonlyMap<string, Uint8Array>;
  /** Wraps it opened. */
  readonly opened: number;
  /** Key × wrap trials made. */
  readonly trials: number;
  holds(key: Uint8Array | undefined): boolean;
}

/** What `initial` keys and the bundles `seen` (encoded; undecodable ones skipped) let an attacker derive. */
export function attackerClosure(initial: Iterable<Uint8Array>, seen: Iterable<Uint8Array>): Closure {
  const bundles: RekeyBundle[] = [];
  const distinct = new Set<string>();
  for (const b of seen) {
    const h = toHex(b);
    if (distinct.has(h)) continue;
    distinct.add(h);
    try {
      bundles.push(decodeBundle(b).bundle);
    } catch {
      // not a bundle
    }
  }
  const keys = new Map<string, Uint8Array>();
  const work: Uint8Array[] = [];
  const add = (k: Uint8Array): void => {
    const h = toHex(k);
    if (!keys.has(h)) {
      keys.set(h, k);
      work.push(k);
    }
  };
  for (const k of initial) add(k);
  let opened = 0;
  let trials = 0;
  // each key is tried once against every wrap: the wrap set is fixed, so a single pass over the growing list is
  // the fixpoint
  for (let i = 0; i < work.length; i++) {
    const k = work[i] as Uint8Array;
    const keks = k.length === 32 ? [k, nodeKek(k)] : [];
    for (const b of bundles)
      for (const w of b.wraps)
        for (const kek of keks) {
          trials++;
          const got = openWrap(kek, w, { groupId: b.groupId, epoch: b.epoch, target: w.target, recipient: w.recipient });
          if (got !== null) {
            opened++;
            add(got);
          }
        }
  }
  return { keys, opened, trials, holds: (key) => key !== undefined && keys.has(toHex(key)) };
}
