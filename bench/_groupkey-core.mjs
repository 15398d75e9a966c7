// Measurement core shared by the group-key benchmark (bench/groupkey-bench.mjs: n = 100 and 1,000) and the
// n = 10,000 slow test (test/groupkey/scale.slow.ts). The group-key modules are passed in — the bench hands over
// the built dist/, the test the TypeScript sources — so both measure the same code the same way. In-process
// only: no network, no I/O; the networked "time until every camera is on the new epoch" is measured elsewhere.
//
// CPU time is process.cpuUsage() (user + system, microsecond resolution, about 1.7 µs per call) taken around
// each operation. It is the whole process's CPU, so V8's background threads (GC, compiler) count when they run
// during an operation: medians, with min and max beside them.
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, sign, verify } from 'node:crypto';
import { median } from './_machine.mjs';

const REFUSED = 'KF_ERR_GROUPKEY_REFUSED';

export const cpuMs = (c) => (c.user + c.system) / 1000;
export const round = (x, digits = 4) => (x === null || x === undefined || Number.isNaN(x) ? null : Number(x.toFixed(digits)));

/** median, min, max, mean, 10th and 90th percentile and the sample count of a list of numbers. */
export function summary(values, digits = 4) {
  if (values.length === 0) return { median: null, min: null, max: null, mean: null, p10: null, p90: null, samples: 0 };
  const s = [...values].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return {
    median: round(median(s), digits),
    min: round(s[0], digits),
    max: round(s[s.length - 1], digits),
    mean: round(s.reduce((a, b) => a + b, 0) / s.length, digits),
    p10: round(at(0.1), digits),
    p90: round(at(0.9), digits),
    samples: s.length,
  };
}

const equal = (a, b) => a !== undefined && b !== undefined && a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

/** CPU ms per call of `fn`: the median of `batches` batches of `n` calls, after `n` warm-up calls. */
function perCall(fn, n, batches = 5) {
  for (let i = 0; i < n; i++) fn();
  const out = [];
  for (let b = 0; b < batches; b++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) fn();
    out.push(cpuMs(process.cpuUsage(c0)) / n);
  }
  return round(median(out), 6);
}

/**
 * Raw node:crypto operations, measured in the same process as the cores (the project's rule: results as a ratio
 * to a baseline run in the same process). `messageBytes`: the size signed, verified and hashed (about a leave
 * bundle). Ed25519 keys from the hardened module, as the KMS uses them.
 */
export function cryptoBaseline(H, { messageBytes = 2000, scale = 1 } = {}) {
  const key = randomBytes(32);
  const nonce = randomBytes(12);
  const aad = randomBytes(30); // about a wrap's AAD (version, type, group id, epoch, target, recipient)
  const plain = randomBytes(32);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(aad);
  const sealed = Buffer.concat([c.update(plain), c.final()]);
  const tag = c.getAuthTag();
  const message = randomBytes(messageBytes);
  const { privateKey, publicKey } = H.ed25519KeyPair(randomBytes(32));
  const signature = sign(null, message, privateKey);
  const n = (k) => Math.max(50, Math.round(k * scale));
  return {
    aesGcmSeal32Ms: perCall(() => {
      const x = createCipheriv('aes-256-gcm', key, nonce);
      x.setAAD(aad);
      x.update(plain);
      x.final();
      x.getAuthTag();
    }, n(20000)),
    aesGcmOpen32Ms: perCall(() => {
      const x = createDecipheriv('aes-256-gcm', key, nonce);
      x.setAAD(aad);
      x.setAuthTag(tag);
      x.update(sealed);
      x.final();
    }, n(20000)),
    hmacSha256Ms: perCall(() => createHmac('sha256', key).update('gkd/v1 kek').update(Uint8Array.of(1)).digest(), n(20000)),
    sha256Ms: perCall(() => createHash('sha256').update(message).digest(), n(20000)),
    ed25519SignMs: perCall(() => sign(null, message, privateKey), n(2000)),
    ed25519VerifyMs: perCall(() => verify(null, message, publicKey, signature), n(2000)),
    messageBytes,
  };
}

/** The raw node:crypto work a rekey cannot avoid, from the baseline: what the measured CPU is compared with. */
export function rawFloors(base, { wraps, opened, height }) {
  return {
    // KMS: one AES-256-GCM seal per wrap, one HMAC (KEK) per new node key (about h), one signature, one SHA-256 (chain)
    kmsMs: wraps * base.aesGcmSeal32Ms + height * base.hmacSha256Ms + base.ed25519SignMs + base.sha256Ms,
    // camera: one verification, one open per wrap on its path, one HMAC (KEK) per level, one SHA-256 (chain)
    cameraMs: base.ed25519VerifyMs + opened * base.aesGcmOpen32Ms + height * base.hmacSha256Ms + base.sha256Ms,
  };
}

// ── hardened mode ────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * A hardened group of `n` cameras (degree `degree`, Ed25519 KMS key, the tree built in one pass), `sample`
 * cameras of it as real HardenedMembers (welcome + genesis bundle), spread evenly over the slots, slot 0
 * included. Then `warmup + rounds` rounds of: one leave of a sampled camera (the first measured one in slot 0,
 * the worst case of a full subtree; then slots spread by the golden ratio), every other sampled camera applies
 * the bundle, the departed one must be refused; one join of a new camera (into the freed slot, so each leave
 * happens at n), every sampled camera applies it, the joiner starts from its welcome and joins the sample.
 * Measured per operation: wraps, bundle bytes, the wraps each camera opens (those on its path), KMS CPU of
 * kms.leave / kms.join (tree, seals, encoding, Ed25519 signature), camera CPU of member.receive(bundle) per call.
 * Checked after every bundle: each sampled camera holds the KMS's epoch secret and its content key agrees with
 * the KMS's (kms.contentKeyFor(kid)); mismatches are counted, not thrown.
 */
export async function measureHardened(H, { n, degree = 4, rounds, sample, warmup = 2, groupId = 'site-1/group-1', log = () => {} }) {
  const { privateKey, publicKey } = H.ed25519KeyPair(randomBytes(32));
  const verifier = H.ed25519Verifier(publicKey);
  const pairwise = new Map();
  const members = [];
  for (let i = 0; i < n; i++) {
    const id = `cam-${i}`;
    const k = new Uint8Array(randomBytes(32));
    pairwise.set(id, k);
    members.push(H.kmsMember(id, k));
  }
  let c0 = process.cpuUsage();
  const { kms, genesis } = await H.HardenedKms.create({ groupId, degree, sign: H.ed25519Signer(privateKey), members });
  const createCpu = cpuMs(process.cpuUsage(c0));
  const height = kms.height;
  const checks = { applied: 0, notApplied: 0, secretMatches: 0, contentKeyMatches: 0, mismatches: 0, leaverRefused: 0, leaverNotRefused: 0, joinersOk: 0 };
  const camera = async (id) => H.HardenedMember.fromWelcome(await kms.welcomeFor(id), { groupId, memberId: id, keys: H.deriveSubkeys(pairwise.get(id)), verify: verifier });

  const live = new Map();
  const genesisApply = [];
  const size = Math.min(sample, n);
  for (let k = 0; k < size; k++) {
    const id = `cam-${Math.floor((k * n) / size)}`;
    const m = await camera(id);
    c0 = process.cpuUsage();
    const r = m.receive(genesis.bundle);
    genesisApply.push(cpuMs(process.cpuUsage(c0)));
    if (r.kind !== 'applied') throw new Error(`${id}: genesis not applied`);
    live.set(id, m);
  }
  log(`hardened n=${n} d=${degree}: created in ${createCpu.toFixed(0)} ms CPU, ${size} cameras on epoch 1`);

  /** Every sampled camera applies `bundle`; returns each call's CPU and how many wraps each camera opened. */
  const applyAll = (bundle) => {
    const pairs = new Set(H.decodeBundle(bundle).bundle.wraps.map((w) => `${w.target}/${w.recipient}`));
    const secret = kms.epochSecret();
    const cpu = [];
    const opened = [];
    for (const m of live.values()) {
      const t0 = process.cpuUsage();
      const r = m.receive(bundle);
      cpu.push(cpuMs(process.cpuUsage(t0)));
      if (r.kind === 'applied' && r.epoch === kms.epoch) checks.applied++;
      else checks.notApplied++;
      let child = H.nodeId(0, m.slot);
      let k = 0;
      for (let level = 1; level <= kms.height; level++) {
        const id = H.ancestorOf(degree, m.slot, level);
        if (pairs.has(`${id}/${child}`)) k++;
        child = id;
      }
      opened.push(k);
      if (equal(m.epochSecret(), secret)) checks.secretMatches++;
      else checks.mismatches++;
      const ck = m.currentContentKey();
      if (equal(kms.contentKeyFor(ck.kid)?.key, ck.key)) checks.contentKeyMatches++;
      else checks.mismatches++;
    }
    return { cpu, opened };
  };

  const leave = { wraps: [], bytes: [], opened: [], kmsCpu: [], applyCpu: [], slots: [], applyMedianPerRound: [] };
  const join = { wraps: [], bytes: [], opened: [], kmsCpu: [], welcomeCpu: [], welcomeBytes: [], applyCpu: [], joinerCpu: [], slots: [], applyMedianPerRound: [] };
  for (let r = 0; r < warmup + rounds; r++) {
    const measured = r >= warmup;
    const target = r === warmup ? 0 : Math.floor(((r * 0.6180339887498949) % 1) * n);
    let leaver;
    for (const m of live.values()) if (leaver === undefined || Math.abs(m.slot - target) < Math.abs(leaver.slot - target)) leaver = m;
    live.delete(leaver.memberId);
    c0 = process.cpuUsage();
    const L = await kms.leave(leaver.memberId);
    const leaveCpu = cpuMs(process.cpuUsage(c0));
    const la = applyAll(L.bundle);
    try {
      leaver.receive(L.bundle);
      checks.leaverNotRefused++;
    } catch (e) {
      if (e?.code !== REFUSED) throw e;
      checks.leaverRefused++;
    }

    const jid = `join-${r}`;
    const jk = new Uint8Array(randomBytes(32));
    pairwise.set(jid, jk);
    c0 = process.cpuUsage();
    const J = await kms.join(H.kmsMember(jid, jk));
    const joinCpu = cpuMs(process.cpuUsage(c0));
    c0 = process.cpuUsage();
    const welcome = await kms.welcomeFor(jid);
    const welcomeCpu = cpuMs(process.cpuUsage(c0));
    const ja = applyAll(J.bundle);
    c0 = process.cpuUsage();
    const joiner = H.HardenedMember.fromWelcome(welcome, { groupId, memberId: jid, keys: H.deriveSubkeys(jk), verify: verifier });
    const jr = joiner.receive(J.bundle);
    const joinerCpu = cpuMs(process.cpuUsage(c0));
    if (jr.kind === 'applied' && equal(joiner.epochSecret(), kms.epochSecret())) checks.joinersOk++;
    else checks.mismatches++;
    live.set(jid, joiner);

    if (!measured) continue;
    leave.wraps.push(L.wraps);
    leave.bytes.push(L.bundle.length);
    leave.opened.push(...la.opened);
    leave.kmsCpu.push(leaveCpu);
    leave.applyCpu.push(...la.cpu);
    leave.applyMedianPerRound.push(median(la.cpu));
    leave.slots.push(leaver.slot);
    join.wraps.push(J.wraps);
    join.bytes.push(J.bundle.length);
    join.opened.push(...ja.opened);
    join.kmsCpu.push(joinCpu);
    join.welcomeCpu.push(welcomeCpu);
    join.welcomeBytes.push(welcome.length);
    join.applyCpu.push(...ja.cpu);
    join.applyMedianPerRound.push(median(ja.cpu));
    join.joinerCpu.push(joinerCpu);
    join.slots.push(J.joined.get(jid));
  }

  const shape = (x) => ({
    wraps: summary(x.wraps, 1),
    bundleBytes: summary(x.bytes, 1),
    openedWraps: summary(x.opened, 1),
    openedWrapBytes: round(median(x.opened) * H.WRAP_BYTES, 1),
    kmsCpuMs: summary(x.kmsCpu),
    cameraApplyCpuMs: summary(x.applyCpu),
    cameraApplyMedianPerRoundMs: summary(x.applyMedianPerRound),
    slots: x.slots,
  });
  return {
    n,
    degree,
    height,
    rounds,
    warmup,
    sampledCameras: size,
    create: { kmsCpuMs: round(createCpu, 1), genesisWraps: genesis.wraps, genesisBytes: genesis.bundle.length, cameraApplyCpuMs: summary(genesisApply) },
    leave: shape(leave),
    join: {
      ...shape(join),
      welcomeBytes: summary(join.welcomeBytes, 1),
      welcomeSignCpuMs: summary(join.welcomeCpu),
      joinerCpuMs: summary(join.joinerCpu),
    },
    checks,
    // for further steps by the caller (not for JSON)
    kms,
    live,
    verifier,
  };
}

// ── the paper's Scheme 1 ─────────────────────────────────────────────────────────────────────────────────────────

const NO_OPS = { E: 0, D: 0, H: 0, X: 0 };
const subOps = (a, b) => ({ E: a.E - b.E, D: a.D - b.D, H: a.H - b.H, X: a.X - b.X });
const addOps = (a, b) => ({ E: a.E + b.E, D: a.D + b.D, H: a.H + b.H, X: a.X + b.X });

/**
 * The paper's Scheme 1 in one process (PaperGroup: a KMS, the leader camera cam-0 and n − 1 member cameras over
 * the in-memory byte network), distributed once, then `warmup + rounds` rounds of one leave (of an original
 * camera) and one join (of a new camera). Each role's `handle` and the group's `send` (which encodes what a role
 * sends) are wrapped with process.cpuUsage, so per operation we get: the KMS's CPU (checking MAC_G1, making GSK,
 * n E(EGSK_IC) and encoding the KeyDelivery, checking ACK_G1 over n h(ACK_IC)), the leader's, and each camera's
 * (D(EGSK_IC), h(ACK_IC), encoding its ACK); decoding on delivery stays in the total only (its per-camera cost is
 * measured apart, `memberKeyDecodeMs`). Counted: E/D/H per role from the paper's own counters, and every byte on
 * the wire.
 */
export function measureScheme1(P, { n, rounds, warmup = 1, seed = 'groupkey-bench', log = () => {} }) {
  const g = new P.PaperGroup({ scheme: 1, members: n - 1, seed });
  const leaderId = P.LEADER_ID;
  const kmsId = P.KMS_ID;
  const cpu = new Map();
  const charge = (id, c0) => cpu.set(id, (cpu.get(id) ?? 0) + cpuMs(process.cpuUsage(c0)));
  const role = g.role.bind(g);
  g.role = (id) => {
    const r = role(id);
    if (r === undefined) return r;
    return {
      handle: (m) => {
        const c0 = process.cpuUsage();
        try {
          return r.handle(m);
        } finally {
          charge(id, c0);
        }
      },
    };
  };
  const send = g.send.bind(g);
  g.send = (from, out) => {
    const c0 = process.cpuUsage();
    try {
      send(from, out);
    } finally {
      charge(from, c0);
    }
  };
  let c0 = process.cpuUsage();
  g.distribute();
  const distributeCpu = cpuMs(process.cpuUsage(c0));
  if (!g.consistent()) throw new Error('Scheme 1: distribution did not complete');
  log(`Scheme 1 n=${n}: distributed in ${distributeCpu.toFixed(0)} ms CPU`);

  const opsOf = (phase) => {
    const cams = new Map();
    for (const [id, c] of [...g.cameras, ...g.departed]) cams.set(id, c.ops.inPhase(phase));
    return { kms: g.kms.ops.inPhase(phase), leader: g.leader.ops.inPhase(phase), cams };
  };

  const run = (phase, act) => {
    cpu.clear();
    const before = opsOf(phase);
    const w0 = g.wire.length;
    const t0 = process.cpuUsage();
    const subject = act();
    const total = cpuMs(process.cpuUsage(t0));
    if (g.refusals.length > 0 || !g.consistent() || g.kms.ackStatus(g.ID_G1) !== 'confirmed') throw new Error(`Scheme 1 ${phase} did not complete`);
    const after = opsOf(phase);
    const others = [...g.cameras.keys()].filter((id) => id !== subject);
    const received = new Map();
    let wireBytes = 0;
    let messages = 0;
    let uplinkBytes = 0;
    let keyDeliveryBytes = 0;
    for (const rec of g.wire.slice(w0)) {
      wireBytes += rec.bytes.length * rec.to.length;
      messages += rec.to.length;
      if (rec.from === kmsId || rec.to.includes(kmsId)) uplinkBytes += rec.bytes.length * rec.to.length;
      if (rec.type === 'KeyDelivery') keyDeliveryBytes += rec.bytes.length;
      for (const to of rec.to) received.set(to, (received.get(to) ?? 0) + rec.bytes.length);
    }
    let camOps = NO_OPS;
    for (const id of others) camOps = addOps(camOps, subOps(after.cams.get(id), before.cams.get(id) ?? NO_OPS));
    const memberKey = g.wire.slice(w0).find((rec) => rec.type === 'MemberKey' && rec.to[0] === others[0]);
    g.wire.length = 0; // the log is only read here; keeping every round's records would grow the heap (and GC time)
    return {
      subject,
      total,
      kms: cpu.get(kmsId) ?? 0,
      leader: cpu.get(leaderId) ?? 0,
      subjectCpu: cpu.get(subject) ?? 0,
      cameras: others.map((id) => cpu.get(id) ?? 0),
      ops: {
        kms: subOps(after.kms, before.kms),
        leader: subOps(after.leader, before.leader),
        subject: subOps(after.cams.get(subject) ?? NO_OPS, before.cams.get(subject) ?? NO_OPS),
        eachCamera: others.length > 0 ? { E: camOps.E / others.length, D: camOps.D / others.length, H: camOps.H / others.length, X: camOps.X / others.length } : NO_OPS,
        cameras: others.length,
      },
      wireBytes,
      messages,
      uplinkBytes,
      keyDeliveryBytes,
      cameraReadBytes: median(others.map((id) => received.get(id) ?? 0)),
      memberKey,
    };
  };

  const acc = { leave: [], join: [] };
  let next = 1;
  for (let r = 0; r < warmup + rounds; r++) {
    const leaving = `cam-${next++}`;
    const L = run('leave', () => g.leave(leaving).ID_IC);
    const J = run('join', () => g.join().ID_IC);
    if (r >= warmup) {
      acc.leave.push(L);
      acc.join.push(J);
    }
  }
  // a camera's decoding of its MemberKey (done by the network loop, outside `handle`), per call
  const mk = acc.leave[0].memberKey;
  const memberKeyDecodeMs = mk === undefined ? 0 : perCall(() => P.decodeMessage(mk.bytes), 5000);
  const shape = (xs) => {
    const x0 = xs[0];
    return {
      kmsE: x0.ops.kms.E,
      ops: { kms: P.paperStyle(x0.ops.kms), leader: P.paperStyle(x0.ops.leader), subject: P.paperStyle(x0.ops.subject), eachCamera: P.paperStyle(x0.ops.eachCamera), raw: x0.ops },
      keyDeliveryBytes: x0.keyDeliveryBytes,
      uplinkBytes: x0.uplinkBytes,
      wireBytes: x0.wireBytes,
      messages: x0.messages,
      cameraReadBytes: x0.cameraReadBytes,
      kmsCpuMs: summary(xs.map((x) => x.kms)),
      leaderCpuMs: summary(xs.map((x) => x.leader)),
      subjectCpuMs: summary(xs.map((x) => x.subjectCpu)),
      cameraCpuMs: summary(xs.flatMap((x) => x.cameras)),
      cameraCpuWithDecodeMs: round(median(xs.flatMap((x) => x.cameras)) + memberKeyDecodeMs),
      totalCpuMs: summary(xs.map((x) => x.total)),
    };
  };
  return { n, rounds, warmup, distributeCpuMs: round(distributeCpu, 1), memberKeyDecodeMs: round(memberKeyDecodeMs, 5), leave: shape(acc.leave), join: shape(acc.join) };
}

// ── report ───────────────────────────────────────────────────────────────────────────────────────────────────────

const ms = (s) => (s === null || s?.median === null ? '—' : `${s.median.toFixed(3)} [${s.min.toFixed(3)}–${s.max.toFixed(3)}]`);

/** Table rows for one hardened result (leave and join) and one Scheme 1 result, for `formatTable`. */
export function hardenedRows(h, base) {
  return ['leave', 'join'].map((op) => {
    const x = h[op];
    const floor = rawFloors(base, { wraps: x.wraps.median, opened: x.openedWraps.median, height: h.height });
    return {
      scheme: `LKH d=${h.degree}`,
      n: h.n,
      op,
      wraps: x.wraps.min === x.wraps.max ? String(x.wraps.median) : `${x.wraps.median} [${x.wraps.min}–${x.wraps.max}]`,
      kmsBytes: String(x.bundleBytes.median),
      cameraBytes: op === 'join' ? `${x.bundleBytes.median} (joiner +${h.join.welcomeBytes.median} welcome)` : String(x.bundleBytes.median),
      ownPathBytes: `${x.openedWrapBytes} (${x.openedWraps.median} [${x.openedWraps.min}–${x.openedWraps.max}] wraps)`,
      kmsCpu: ms(x.kmsCpuMs),
      cameraCpu: ms(x.cameraApplyCpuMs),
      kmsVsBase: `${(x.kmsCpuMs.median / base.aesGcmSeal32Ms).toFixed(0)} seals / ${(x.kmsCpuMs.median / base.ed25519SignMs).toFixed(1)} signs / ${(x.kmsCpuMs.median / floor.kmsMs).toFixed(2)}× floor`,
      cameraVsBase: `${(x.cameraApplyCpuMs.median / base.ed25519VerifyMs).toFixed(2)} verifies / ${(x.cameraApplyCpuMs.median / floor.cameraMs).toFixed(2)}× floor`,
    };
  });
}

export function scheme1Rows(s, base) {
  return ['leave', 'join'].map((op) => {
    const x = s[op];
    return {
      scheme: 'Scheme 1',
      n: s.n,
      op,
      wraps: `${x.kmsE} E`,
      kmsBytes: String(x.keyDeliveryBytes),
      cameraBytes: String(x.cameraReadBytes),
      ownPathBytes: '—',
      kmsCpu: ms(x.kmsCpuMs),
      cameraCpu: ms(x.cameraCpuMs),
      kmsVsBase: `${(x.kmsCpuMs.median / base.aesGcmSeal32Ms).toFixed(0)} seals / ${(x.kmsCpuMs.median / base.ed25519SignMs).toFixed(1)} signs`,
      cameraVsBase: `${(x.cameraCpuMs.median / base.ed25519VerifyMs).toFixed(2)} verifies`,
    };
  });
}

const COLUMNS = [
  ['scheme', 'scheme'],
  ['n', 'n'],
  ['op', 'op'],
  ['wraps', 'wraps / E'],
  ['kmsBytes', 'KMS sends B'],
  ['cameraBytes', 'camera reads B'],
  ['ownPathBytes', 'own-path wraps B (med [min–max])'],
  ['kmsCpu', 'KMS CPU ms med [min–max]'],
  ['cameraCpu', 'camera CPU ms med [min–max]'],
  ['kmsVsBase', 'KMS vs baseline'],
  ['cameraVsBase', 'camera vs baseline'],
];

export function formatTable(rows) {
  const body = rows.map((r) => COLUMNS.map(([k]) => String(r[k])));
  const head = COLUMNS.map(([, t]) => t);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}
