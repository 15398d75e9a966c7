/**
 * `keyframe audit export | verify | show` on the real log of a running KMS (issue 13 §4 acceptance): verify passes on
 * the real log and fails, naming the entry, for an edit, a deletion, a swap, an insertion, a truncation, an edit whose
 * hashes were all recomputed, a foreign signer; the same on the KMS's database once it is stopped; and a KMS whose
 * log was cut below its last checkpoint does not start.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextRow } from '../../src/audit/chain.js';
import type { ChainRow } from '../../src/audit/chain.js';
import { openBrowserSession } from '../../src/access/licence-client.js';
import { loadKmsConfig } from '../../src/kms/config.js';
import { startKms } from '../../src/kms/server.js';
import type { RunningKms } from '../../src/kms/server.js';
import { toPem } from '../../src/pki/pem.js';
import { runCli } from '../helpers/cli.js';
import { makeKmsSite, PIN_ENV } from '../kms/_setup.js';
import type { KmsSite } from '../kms/_setup.js';

let site: KmsSite;
let kms: RunningKms | undefined;
let exportFile: string;
const env = (): NodeJS.ProcessEnv => ({ [PIN_ENV]: process.env[PIN_ENV] });
const PASSWORD = 'correct horse battery staple';

async function start(create = false): Promise<RunningKms> {
  kms = await startKms(loadKmsConfig(site.configPath), { createDatabase: create });
  return kms;
}

beforeAll(async () => {
  site = await makeKmsSite(['CAM-A']);
  site.writeConfig(site.port, { batchWindow: '50ms', browser: { host: '127.0.0.1', port: 0 } });
  const k = await start(true);
  const admin = await site.admin(k.url);
  const cam = await site.camera(k.url, 'CAM-A');
  await cam.camera.enrol();
  await admin.json('POST', '/v1/admin/groups', { id: 'gate', members: ['CAM-A'] });
  await cam.camera.sync('gate');
  const key = await cam.camera.currentContentKey('gate');
  await cam.close();
  await admin.json('POST', '/v1/admin/users', { name: 'ivan', role: 'investigator', password: PASSWORD });
  await admin.json('POST', '/v1/admin/grants', { user: 'ivan', camera: 'CAM-A', rights: ['playback'], lastMs: 86_400_000 });
  const s = await openBrowserSession(k.browserUrl as string, [toPem(site.ca.certs.operator.rawData, 'CERTIFICATE')], 'ivan', PASSWORD);
  await s.licence([key.kid]);
  await s.logout();
  admin.close();
  exportFile = join(site.work, 'audit.jsonl');
}, 240_000);

afterAll(async () => {
  await kms?.close();
});

function lines(): string[] {
  return readFileSync(exportFile, 'utf8').trimEnd().split('\n');
}

async function verify(file: string, extra: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(['audit', 'verify', file, '--operator-ca', join(site.caDir, 'operator.pem'), ...extra], env());
}

function variant(name: string, edit: (l: string[]) => string[]): string {
  const f = join(site.work, `audit-${name}.jsonl`);
  writeFileSync(f, `${edit(lines()).join('\n')}\n`);
  return f;
}

describe('keyframe audit', () => {
  it('export and verify the real log; show filters it', async () => {
    const k = kms as RunningKms;
    const adminArgs = ['--url', k.url, '--identity', site.adminDir];
    const ex = await runCli(['audit', 'export', '--out', exportFile, '--checkpoint', ...adminArgs], env());
    expect(ex.stderr).toBe('');
    expect(ex.code).toBe(0);
    expect(ex.stdout).toMatch(/^exported (\d+) entries and 1 checkpoints \(the last at entry \1\) → /);
    const again = await runCli(['audit', 'export', '--out', exportFile, ...adminArgs], env());
    expect(again).toMatchObject({ code: 1, stderr: expect.stringMatching(/exists/) as unknown });
    const ok = await verify(exportFile);
    expect(ok.code).toBe(0);
    const n = lines().length - 2;
    expect(ok.stdout).toContain(`audit log OK: ${n} entries, chain head `);
    expect(ok.stdout).toContain('signed by CN=localhost');
    const shown = await runCli(['audit', 'show', exportFile, '--user', 'ivan'], env());
    expect(shown.code).toBe(0);
    expect(shown.stdout.split('\n').filter((l) => /^\s+\d+ /.test(l)).map((l) => l.split(/\s+/)[4])).toEqual(['user-add', 'grant-add', 'login', 'licence', 'logout']);
    expect(shown.stdout).toMatch(/licence\s+released [0-9a-f]{8}… CAM-A epoch 1/);
    const live = await runCli(['audit', 'show', '--action', 'group-create', '--json', ...adminArgs], env());
    expect(JSON.parse(live.stdout)).toEqual([expect.objectContaining({ action: 'group-create', actor: 'admin:ops' })]);
  }, 120_000);

  it('fails, naming the entry, for each edit of the export', async () => {
    const entry = (l: string[], i: number): ChainRow => JSON.parse(l[i] as string) as ChainRow;
    const rows = lines().slice(1, -1).map((l) => JSON.parse(l) as ChainRow);
    const cases: [string, (l: string[]) => string[], RegExp][] = [
      ['edit', (l) => l.map((x, i) => (i === 3 ? x.replace('\\"admin:ops\\"', '\\"admin:eve\\"') : x)), /^audit log BROKEN at entry 3: entry 3: the entry (does not hash to its leaf|is not the canonical JSON)/],
      ['delete', (l) => l.filter((_, i) => i !== 2), /^audit log BROKEN at entry 3: entry 3: found where entry 2 belongs/],
      ['swap', (l) => [l[0] as string, l[2] as string, l[1] as string, ...l.slice(3)], /^audit log BROKEN at entry 2: entry 2: found where entry 1 belongs/],
      [
        'insert',
        (l) => {
          const forged = nextRow(entry(l, 1), { v: 1, at: new Date().toISOString(), actor: 'admin:eve', action: 'grant-add', detail: {} });
          return [l[0] as string, l[1] as string, JSON.stringify(forged), ...l.slice(2)];
        },
        /^audit log BROKEN at entry 2: entry 2: found where entry 3 belongs/,
      ],
      ['truncate', (l) => [...l.slice(0, 4), l.at(-1) as string], /^audit log BROKEN at entry 4: the log ends at entry 3, but a signed checkpoint covers \d+ entries: entries 4…\d+ were removed/],
      [
        'rechain',
        (l) => {
          // an edit of entry 2, then every hash after it recomputed: the chain is whole, the signed checkpoint is not
          const out: ChainRow[] = [];
          for (const r of rows) {
            const fields = JSON.parse(r.entry) as Record<string, unknown>;
            delete fields['seq'];
            if (r.seq === 2) fields['actor'] = 'admin:eve';
            out.push(nextRow(out.at(-1), fields));
          }
          return [l[0] as string, ...out.map((r) => JSON.stringify(r)), l.at(-1) as string];
        },
        /^audit log BROKEN at entry 1: entries 1…\d+ do not match the signed checkpoint at entry \d+: one of them was altered and the chain recomputed/,
      ],
      ['signature', (l) => l.map((x, i) => (i === l.length - 1 ? x.replace(/"signature":"[A-Za-z0-9+/]{10}/, '"signature":"AAAAAAAAAA') : x)), /^audit log BROKEN: checkpoint at entry \d+: the signature does not verify/],
    ];
    for (const [name, edit, message] of cases) {
      const r = await verify(variant(name, edit));
      expect({ name, code: r.code, stdout: r.stdout.trim() }).toEqual({ name, code: 1, stdout: expect.stringMatching(message) as unknown });
    }
    // the operator CA of another site does not vouch for this KMS
    const other = await makeKmsSite([]);
    const r = await runCli(['audit', 'verify', exportFile, '--operator-ca', join(other.caDir, 'operator.pem')], env());
    expect(r).toMatchObject({ code: 1, stdout: expect.stringMatching(/^audit log BROKEN: the signer CN=localhost, O=keyframe does not chain to the operator CA: self-signed certificate "CN=keyframe Operator CA, O=keyframe" is not a trusted root/) as unknown });
  }, 120_000);

  it("on the stopped KMS's database: OK, an edited row is named; a log cut below its checkpoint stops the KMS from starting", async () => {
    await kms?.close();
    kms = undefined;
    const db = join(site.work, 'kms.sqlite');
    const chain = join(site.work, 'kms', 'chain.pem');
    const ok = await verify(db, ['--kms-chain', chain]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^audit log OK: \d+ entries/);
    const d = new Database(db);
    const size = (d.prepare('SELECT max(size) AS n FROM audit_checkpoints').get() as { n: number }).n;
    d.prepare("UPDATE audit SET entry = replace(entry, '\"ivan\"', '\"eve\"') WHERE seq = (SELECT min(seq) FROM audit WHERE action = 'licence')").run();
    d.close();
    const bad = await verify(db, ['--kms-chain', chain]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^audit log BROKEN at entry \d+: entry \d+: the entry does not hash to its leaf/);
    // the KMS names it too and does not start
    await expect(start()).rejects.toThrow(/the KMS audit log (is damaged at entry \d+|does not match its signed checkpoint)/);
    const d2 = new Database(db);
    d2.prepare('DELETE FROM audit WHERE seq >= ?').run(size - 1);
    d2.close();
    await expect(start()).rejects.toThrow(new RegExp(`the KMS audit log ends at entry ${size - 2}, but its signed checkpoint covers ${size} entries`));
  }, 120_000);
});
