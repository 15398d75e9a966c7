/**
 * The notes' §7 target for a single leave at n = 10,000: ≤ 27 wraps and a bundle ≤ 2.1 KB, measured with the
 * real encoder (Ed25519 signature, a realistic group id). The tree is built in one pass (HardenedKms.create →
 * LkhTree.bulk), not by 10,000 rekeys. A camera next to the leaver applies every bundle. A join is measured
 * for the record.
 */
import { describe, expect, it } from 'vitest';
import { decodeBundle } from '../../src/groupkey/hardened/bundle.js';
import { deriveSubkeys, toHex } from '../../src/groupkey/hardened/kdf.js';
import { HardenedKms, kmsMember } from '../../src/groupkey/hardened/kms.js';
import { HardenedMember } from '../../src/groupkey/hardened/member.js';
import type { Degree } from '../../src/groupkey/hardened/nodes.js';
import { ed25519KeyPair, ed25519Signer, ed25519Verifier } from '../../src/groupkey/hardened/signature.js';
import { WRAP_BYTES } from '../../src/groupkey/hardened/wrap.js';
import { seededRandom } from '../../src/groupkey/paper/primitives.js';

const N = 10_000;
const GROUP = 'site-1/group-1';
/** version, type, id (1 + 14), epoch, prevEpochHash, issuedAt, reason, degree, height, count. */
const HEADER = 2 + 1 + GROUP.length + 8 + 32 + 8 + 3 + 4;
const SIGNATURE = 2 + 64;

const CASES: readonly { degree: Degree; height: number; worst: number }[] = [
  { degree: 2, height: 14, worst: 27 },
  { degree: 4, height: 7, worst: 26 },
];

describe.each(CASES)('a single leave at n = 10,000, degree $degree', ({ degree, height, worst }) => {
  it(`needs ≤ 27 wraps (here ${worst} at worst) and a bundle ≤ 2.1 KB`, async () => {
    const r = seededRandom(`cost-${degree}`);
    const K = Array.from({ length: N }, () => r(32));
    const { privateKey, publicKey } = ed25519KeyPair(r(32));
    const { kms, genesis } = await HardenedKms.create({ groupId: GROUP, degree, sign: ed25519Signer(privateKey), random: r, members: K.map((k, i) => kmsMember(`cam-${i}`, k)) });
    expect(kms.height).toBe(height);
    // the leaver's neighbour, as a real camera: welcome + genesis, then the leave
    const neighbour = HardenedMember.fromWelcome(await kms.welcomeFor('cam-1'), { groupId: GROUP, memberId: 'cam-1', keys: deriveSubkeys(K[1] as Uint8Array), verify: ed25519Verifier(publicKey) });
    neighbour.receive(genesis.bundle);
    const measured: string[] = [];
    for (const leaver of ['cam-0', 'cam-4999', 'cam-8191', 'cam-9999']) {
      const t0 = process.cpuUsage();
      const { wraps, bundle } = await kms.leave(leaver);
      const cpu = process.cpuUsage(t0);
      measured.push(`${leaver}: ${wraps} wraps, ${bundle.length} B, ${((cpu.user + cpu.system) / 1000).toFixed(2)} ms KMS CPU`);
      expect(wraps).toBeLessThanOrEqual(27);
      expect(wraps).toBeLessThanOrEqual(degree * height - 1);
      expect(bundle.length).toBe(HEADER + wraps * WRAP_BYTES + SIGNATURE);
      expect(bundle.length).toBeLessThanOrEqual(2100);
      expect(decodeBundle(bundle).bundle.wraps).toHaveLength(wraps);
      expect(neighbour.receive(bundle).kind).toBe('applied');
      expect(toHex(neighbour.epochSecret())).toBe(toHex(kms.epochSecret() as Uint8Array));
    }
    // for the record: a join into the freed slot 0 (fresh keys on its path, wrapped under every non-empty child)
    const join = await kms.join(kmsMember('cam-new', r(32)));
    expect(join.joined.get('cam-new')).toBe(0);
    expect(join.wraps).toBeLessThanOrEqual(degree * height);
    measured.push(`join cam-new: ${join.wraps} wraps, ${join.bundle.length} B`);
    const first = measured[0] as string;
    expect(first.startsWith(`cam-0: ${worst} wraps, ${HEADER + worst * WRAP_BYTES + SIGNATURE} B`)).toBe(true);
    console.info(`degree ${degree}, h = ${height}:\n  ${measured.join('\n  ')}`);
  });
});
