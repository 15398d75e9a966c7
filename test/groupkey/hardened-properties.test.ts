/**
 * Hardened mode under random sequences of joins, leaves (single and batched), rejoins and refreshes (fast-check):
 *
 * - tree consistency: after every step every live camera holds the KMS's current epoch and epoch secret, and
 *   exactly the keys of its path;
 * - forward secrecy and collusion resistance: no departed camera, and no coalition of all departed cameras —
 *   with every key each of them ever held and every bundle that ever went over the wire — derives the epoch
 *   secret of an epoch in which none of them was a member;
 * - backward secrecy: no joiner, and no coalition of all joiners, derives the epoch secret of an epoch before
 *   it joined (more generally: of any epoch in which none of them was a member);
 * - a stolen epoch secret is worth that epoch only: every epoch secret together opens no wrap.
 * "Derives" is checked by trying every key the attacker holds against every wrap it saw (attackerClosure) and
 * comparing everything it opened with the KMS's epoch secrets.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HardenedGroup } from '../../src/groupkey/hardened/group.js';
import { toHex } from '../../src/groupkey/hardened/kdf.js';
import type { Degree } from '../../src/groupkey/hardened/nodes.js';
import { attackerClosure } from './hardened-attacker.js';

type Op =
  | { readonly kind: 'join'; readonly count: number }
  | { readonly kind: 'leave'; readonly pick: number }
  | { readonly kind: 'batch'; readonly joins: number; readonly leaves: readonly number[] }
  | { readonly kind: 'rejoin'; readonly pick: number }
  | { readonly kind: 'refresh'; readonly scope: 'root' | 'tree' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('join' as const), count: fc.integer({ min: 1, max: 2 }) }),
  fc.record({ kind: fc.constant('leave' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('leave' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('batch' as const), joins: fc.integer({ min: 0, max: 3 }), leaves: fc.array(fc.nat(), { maxLength: 3 }) }),
  fc.record({ kind: fc.constant('rejoin' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('refresh' as const), scope: fc.constantFrom('root' as const, 'tree' as const) }),
);

interface Run {
  readonly g: HardenedGroup;
  /** Every key each camera ever held (leaf and auth sub-keys, path keys), by camera. */
  readonly knowledge: Map<string, Map<string, Uint8Array>>;
  /** Members of each epoch. */
  readonly liveAt: Map<number, Set<string>>;
  readonly joiners: Set<string>;
}

function pickFrom<T>(xs: readonly T[], i: number): T | undefined {
  return xs.length === 0 ? undefined : xs[i % xs.length];
}

function observe(r: Run): void {
  const { g } = r;
  expect(g.refusals.map((x) => x.error.message)).toEqual([]);
  expect(g.consistent()).toBe(true);
  const nodes = g.kms.nodeKeys();
  r.liveAt.set(g.kms.epoch, new Set(g.kms.roster()));
  for (const [id, m] of g.cameras) {
    const held = m.heldKeys();
    expect(held.slice(1).map((k) => k.node)).toEqual(g.kms.pathOf(id));
    for (const k of held.slice(1)) expect(toHex(k.key)).toBe(toHex(nodes.get(k.node) as Uint8Array));
    const mine = r.knowledge.get(id) ?? new Map<string, Uint8Array>();
    for (const k of held) mine.set(toHex(k.key), k.key);
    r.knowledge.set(id, mine);
  }
}

async function play(degree: Degree, n: number, ops: readonly Op[], seed: string): Promise<Run> {
  const g = await HardenedGroup.create({ members: n, degree, seed });
  const r: Run = { g, knowledge: new Map(), liveAt: new Map(), joiners: new Set() };
  observe(r);
  for (const o of ops) {
    const live = [...g.cameras.keys()];
    const before = new Set(g.K.keys());
    switch (o.kind) {
      case 'join':
        await g.rekey({ joins: o.count });
        break;
      case 'leave': {
        const id = pickFrom(live, o.pick);
        if (id === undefined) continue;
        await g.leave(id);
        break;
      }
      case 'batch': {
        const leaves = [...new Set(o.leaves.map((i) => pickFrom(live, i)).filter((x): x is string => x !== undefined))];
        await g.rekey({ joins: o.joins, leaves });
        break;
      }
      case 'rejoin': {
        const id = pickFrom([...g.departed.keys()].filter((x) => !g.cameras.has(x)), o.pick);
        if (id === undefined) continue;
        await g.join(id);
        r.joiners.add(id);
        break;
      }
      case 'refresh':
        await g.refresh(o.scope);
        break;
    }
    for (const id of g.K.keys()) if (!before.has(id)) r.joiners.add(id);
    observe(r);
  }
  return r;
}

/** Asserts that `coalition`, with all it ever held and every bundle on the wire, derives no epoch secret of an epoch none of it was a member of. */
function noSecretOutside(r: Run, coalition: readonly string[], what: string): void {
  if (coalition.length === 0) return;
  const initial: Uint8Array[] = [];
  for (const id of coalition) initial.push(...(r.knowledge.get(id)?.values() ?? []));
  const c = attackerClosure(initial, r.g.bundlesOnWire());
  for (let e = 1; e <= r.g.kms.epoch; e++) {
    const live = r.liveAt.get(e) as Set<string>;
    if (coalition.some((id) => live.has(id))) continue;
    expect(c.holds(r.g.kms.epochSecret(e)), `${what} {${coalition.join(', ')}} derives the secret of epoch ${e} (members: ${[...live].join(', ')})`).toBe(false);
  }
}

let runs = 0;

describe('hardened mode, random joins, leaves, rejoins and refreshes', () => {
  it('every live camera holds the KMS key; no departed camera or coalition derives a later key; no joiner an earlier one', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom<Degree>(2, 4), fc.integer({ min: 1, max: 6 }), fc.array(op, { minLength: 1, maxLength: 10 }), async (degree, n, ops) => {
        const r = await play(degree, n, ops, `prop-${runs++}`);
        const departed = [...r.g.departed.keys()].filter((id) => !r.g.cameras.has(id));
        for (const id of departed) noSecretOutside(r, [id], 'departed camera');
        noSecretOutside(r, departed, 'coalition of departed cameras');
        for (const id of r.joiners) noSecretOutside(r, [id], 'joiner');
        noSecretOutside(r, [...r.joiners], 'coalition of joiners');
        // epoch secrets never wrap anything: all of them together open no wrap
        const secrets = Array.from({ length: r.g.kms.epoch }, (_, i) => r.g.kms.epochSecret(i + 1) as Uint8Array);
        expect(attackerClosure(secrets, r.g.bundlesOnWire()).opened).toBe(0);
      }),
      { numRuns: 40 },
    );
  });

  it('the closure is not vacuous: a camera still in the group derives the current secret from its leaf key and the wire alone', async () => {
    const r = await play(2, 5, [{ kind: 'leave', pick: 1 }, { kind: 'join', count: 2 }, { kind: 'refresh', scope: 'tree' }], 'not-vacuous');
    for (const [id] of r.g.cameras) {
      const leafOnly = attackerClosure([r.g.cameras.get(id)?.heldKeys()[0]?.key as Uint8Array], r.g.bundlesOnWire());
      expect(leafOnly.holds(r.g.kms.epochSecret())).toBe(true);
      expect(leafOnly.opened).toBeGreaterThan(0);
    }
  });
});
