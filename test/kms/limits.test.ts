/**
 * Issue 10 §1, attacks on a real KMS process over real sockets:
 * 1. relay flood — an enrolled camera posts oversized and maximum-sized messages to a group member as fast as it
 *    can while another camera's requests are timed and the KMS's memory is read from /proc;
 * 2. connection exhaustion — thousands of silent TCP sockets and half-open TLS handshakes, with no certificate at
 *    all, and an enrolled camera that still gets its answer within a second; a body and headers trickled a byte at
 *    a time are cut off; every limit that bites is in the log.
 */
import { execFile } from 'node:child_process';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/errors.js';
import type { GroupKeyCamera } from '../../src/camera/group-key.js';
import type { KmsClient } from '../../src/kms/client.js';
import { loadTlsIdentity, tlsClientOptions } from '../../src/pki/tls.js';
import { REPO } from '../helpers/cli.js';
import { startService } from '../helpers/service.js';
import type { ServiceProcess } from '../helpers/service.js';
import { makeKmsSite, PIN_ENV } from './_setup.js';
import type { KmsSite } from './_setup.js';

const MiB = 1024 * 1024;
const CAMS = ['CAM-A', 'CAM-B', 'CAM-C', 'CAM-D'];
let site: KmsSite;
let kms: ServiceProcess;
let admin: KmsClient;
const agents = new Map<string, { camera: GroupKeyCamera; close(): Promise<void> }>();
const cam = (s: string): GroupKeyCamera => (agents.get(s) as { camera: GroupKeyCamera }).camera;
const limitLines = (kind: string): number => kms.lines().filter((l) => l.event === 'limit' && l['limit'] === kind).length;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
}

beforeAll(async () => {
  site = await makeKmsSite(CAMS);
  site.writeConfig(site.port, { batchWindow: '100ms', limits: { maxConnections: 1000, handshakeTimeout: '3s', headersTimeout: '2s', requestTimeout: '4s' } });
  kms = await startService(['kms', 'serve', '--config', site.configPath, '--new-database'], { [PIN_ENV]: process.env[PIN_ENV] });
  admin = await site.admin(kms.url);
  for (const s of CAMS) agents.set(s, await site.camera(kms.url, s));
  for (const s of CAMS) await cam(s).enrol();
  await admin.json('POST', '/v1/admin/groups', { id: 'yard', members: CAMS, leader: 'CAM-A' });
}, 240_000);

afterAll(async () => {
  for (const a of agents.values()) await a.close();
  admin?.close();
  await kms?.stop();
});

describe('relay flood from an enrolled camera', () => {
  it('a camera may not post to itself', async () => {
    await expect(cam('CAM-A').client.call('POST', '/v1/groups/yard/messages?to=CAM-A', new Uint8Array(10))).rejects.toMatchObject({ code: ErrorCodes.INPUT, message: expect.stringContaining('itself') as unknown });
  });

  it('4 MB and 1 MiB messages as fast as they go: refused beyond the bounds, another camera keeps p99 < 200 ms (or 4 × its quiet p99 on a loaded machine), the KMS stays under 300 MB', async () => {
    // the bystander's own p99 without a flood, measured first on the same machine at the same moment: on a machine
    // loaded by other work (two suites side by side, or more) every request is slower, flood or not, and the claim
    // is about what the flood adds — 200 ms, or 4 × the quiet p99 when that is larger (the flood this guards against
    // blocked the event loop for 24 s)
    const quiet: number[] = [];
    for (let i = 0; i < 40; i++) {
      const t0 = performance.now();
      await cam('CAM-C').client.call('GET', '/v1/me');
      quiet.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 20));
    }
    const bound = Math.max(200, 4 * percentile(quiet, 99));
    // the attacker and its victim in their own process (test/fixtures/relay-flood.mjs), the bystander here
    const flood = new Promise<{ outcomes: { accepted: number; limited: number; tooLarge: number; dropped: number; other: number[] }; received: number; largest: number; again: number }>((resolve, reject) => {
      // niced: on this shared 2-core machine the attacker's own CPU would otherwise be taken from the KMS, which a
      // real attacker's machine does not do; it still floods as fast as it can whenever a core is free
      execFile(
        'nice',
        ['-n', '10', process.execPath, join(REPO, 'test/fixtures/relay-flood.mjs'), kms.url, site.cameraDirs.get('CAM-A') as string, site.cameraDirs.get('CAM-B') as string, join(site.work, 'flood-state'), join(site.caDir, 'operator.pem'), 'yard', '8'],
        { env: { ...process.env, [PIN_ENV]: process.env[PIN_ENV] }, timeout: 200_000, maxBuffer: 1 << 20 },
        (err, stdout, stderr) => (err !== null ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as never)),
      );
    });
    let stop = false;
    const latencies: number[] = [];
    const bystander = (async (): Promise<void> => {
      while (!stop) {
        const t0 = performance.now();
        await cam('CAM-C').client.call('GET', '/v1/me');
        latencies.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const r = await flood.finally(() => (stop = true));
    await bystander;
    const mem = kms.memory();
    const summary = { ...r, requests: latencies.length, p50: percentile(latencies, 50), p99: percentile(latencies, 99), quietP99: percentile(quiet, 99), bound, peakMiB: Math.round(mem.peak / MiB) };
    expect(r.outcomes.other, JSON.stringify(summary)).toEqual([]);
    expect(r.outcomes.accepted, JSON.stringify(summary)).toBeGreaterThan(0);
    expect(r.outcomes.limited, JSON.stringify(summary)).toBeGreaterThan(0); // the quotas bit
    expect(r.outcomes.tooLarge + r.outcomes.dropped, JSON.stringify(summary)).toBeGreaterThan(0); // no 4 MB message got in
    expect(r.largest).toBeLessThanOrEqual(MiB);
    expect(r.received).toBeGreaterThan(0);
    expect(latencies.length, JSON.stringify(summary)).toBeGreaterThan(40);
    expect(summary.p99, JSON.stringify(summary)).toBeLessThan(bound);
    expect(mem.peak, JSON.stringify(summary)).toBeLessThan(300 * MiB);
    expect(limitLines('quota')).toBeGreaterThan(0);
    expect(limitLines('body-size')).toBeGreaterThan(0);
    expect(r.again).toBe(204); // once read, the quota is free again
  }, 240_000);
});

describe('connection exhaustion without a certificate', () => {
  const sockets: Socket[] = [];
  const closed = { count: 0 };
  const open = (n: number, halfOpenTls: boolean): Promise<void> => {
    const { port } = new URL(kms.url);
    return new Promise((resolve) => {
      let pending = n;
      for (let i = 0; i < n; i++) {
        const s = netConnect({ host: '127.0.0.1', port: Number(port) });
        sockets.push(s);
        s.on('error', () => undefined);
        s.once('close', () => closed.count++);
        s.once('connect', () => {
          // half-open: the first bytes of a TLS record (a ClientHello that never comes)
          if (halfOpenTls) s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]));
          if (--pending === 0) resolve();
        });
      }
    });
  };

  afterAll(() => {
    for (const s of sockets) s.destroy();
  });

  it('2,500 silent sockets and 1,000 half-open handshakes: the enrolled camera still gets its answer within a second', async () => {
    // an authenticated connection held open through the flood (a camera's long poll): it is never the one shed
    const epoch = (await admin.json<{ epoch: number }>('GET', '/v1/admin/groups/yard')).epoch;
    expect((await cam('CAM-C').sync('yard')).epoch).toBe(epoch);
    const held = cam('CAM-C').sync('yard', { waitMs: 45_000 });
    await new Promise((r) => setTimeout(r, 200));
    await open(2_500, false);
    await open(1_000, true);
    // once the KMS has taken the burst in (every socket accepted, the excess shed), while the rest are held:
    for (;;) {
      const c = (await admin.json<{ connections: { open: number; shed: number } }>('GET', '/v1/admin/status')).connections;
      if (c.open + c.shed >= sockets.length) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // a camera connecting now (a new TLS connection with its certificate) is served at once
    const fresh = await site.camera(kms.url, 'CAM-D');
    try {
      const t0 = performance.now();
      const me = await fresh.camera.client.json<{ serial: string }>('GET', '/v1/me');
      const elapsed = performance.now() - t0;
      expect(me.serial).toBe('CAM-D');
      expect(elapsed).toBeLessThan(1_000);
    } finally {
      await fresh.close();
    }
    const status = await admin.json<{ connections: { open: number; shed: number } }>('GET', '/v1/admin/status');
    expect(status.connections.open).toBeLessThanOrEqual(1_000);
    expect(status.connections.shed).toBeGreaterThan(0);
    // the long poll's connection survived: it answers the next epoch
    await admin.json('POST', '/v1/admin/groups/yard/refresh', {});
    expect(await held).toMatchObject({ status: 'applied', epoch: epoch + 1 });
    expect(limitLines('connections')).toBeGreaterThan(0);
    // and the survivors are closed by the handshake timeout (3 s), logged
    const deadline = Date.now() + 30_000;
    while (closed.count < sockets.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(closed.count).toBe(sockets.length);
    expect(limitLines('handshake-timeout')).toBeGreaterThan(0);
  }, 240_000);

  async function camTls(): Promise<ReturnType<typeof tlsConnect>> {
    const options = await tlsClientOptions(loadTlsIdentity(site.cameraDirs.get('CAM-C') as string), { roots: [site.ca.certs.operator] });
    const { port } = new URL(kms.url);
    return new Promise((resolve, reject) => {
      const s = tlsConnect({ ...options, host: '127.0.0.1', port: Number(port) }, () => resolve(s));
      s.once('error', reject);
    });
  }

  /** Writes `head` now, then one byte of `rest` every 500 ms; resolves with what the server answered and when it closed. */
  async function trickle(head: string, rest: string): Promise<{ answer: string; seconds: number }> {
    const s = await camTls();
    const t0 = performance.now();
    let answer = '';
    s.on('data', (d: Buffer) => (answer += d.toString()));
    s.on('error', () => undefined);
    s.write(head);
    let i = 0;
    const timer = setInterval(() => {
      if (i < rest.length && !s.destroyed) s.write(rest[i++] as string);
    }, 500);
    await new Promise((r) => s.once('close', r));
    clearInterval(timer);
    return { answer, seconds: (performance.now() - t0) / 1000 };
  }

  it('a body trickled a byte every 500 ms is cut off by the request timeout (4 s), with a 408 and a log line', async () => {
    const r = await trickle('POST /v1/groups/yard/messages?to=CAM-B HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n', 'x'.repeat(100));
    expect(r.answer).toMatch(/^HTTP\/1\.1 408/);
    expect(r.seconds).toBeGreaterThan(3);
    expect(r.seconds).toBeLessThan(15);
    expect(limitLines('request-timeout')).toBeGreaterThan(0);
  }, 30_000);

  it('headers trickled a byte every 500 ms are cut off by the headers timeout (2 s)', async () => {
    const r = await trickle('GET /v1/me HTTP/1.1\r\n', 'Host: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n');
    expect(r.answer).toMatch(/^HTTP\/1\.1 408/);
    expect(r.seconds).toBeLessThan(15);
  }, 30_000);
});
