/**
 * The KMS with its identity key in a SoftHSM2 token (TLS through OpenSSL's pkcs11 engine, bundle signatures, the
 * enrolment ECDH and the state-sealing key all inside the token), and a camera whose device key is in another
 * token: enrolment, a group, sync, a restart. pkcs11-tool reads the tokens back: the sealing key and both K_i are
 * sensitive and never extractable; no file the KMS wrote holds a private key or an epoch secret in the clear.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKmsConfig } from '../../src/kms/config.js';
import { startKms } from '../../src/kms/server.js';
import type { RunningKms } from '../../src/kms/server.js';
import type { GroupKeyCamera } from '../../src/camera/group-key.js';
import type { KmsClient } from '../../src/kms/client.js';
import { createTestToken, SOFTHSM_MODULE } from '../helpers/softhsm.js';
import type { TestToken } from '../helpers/softhsm.js';
import { findPlaintextPrivateKeys } from '../helpers/no-plaintext-keys.js';
import { makeKmsSite } from './_setup.js';
import type { KmsSite } from './_setup.js';

let kmsToken: TestToken;
let camToken: TestToken;
let site: KmsSite;
let kms: RunningKms | undefined;
let admin: KmsClient | undefined;
const agents: { camera: GroupKeyCamera; close(): Promise<void> }[] = [];

function objects(token: TestToken): string {
  return execFileSync('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--token-label', token.label, '--login', '--pin', token.pin, '--list-objects', '--type', 'secrkey'], { env: token.env, encoding: 'utf8' });
}

/** The block pkcs11-tool prints for the object labelled `label`. */
function block(listing: string, label: string): string {
  return listing.split(/\n(?=Secret Key Object)/).find((b) => b.includes(`label:      ${label}`)) ?? '';
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => join(dir, f)).filter((f) => statSync(f).isFile());
}

async function start(): Promise<void> {
  kms = await startKms(loadKmsConfig(site.configPath), { createDatabase: true });
  admin?.close();
  admin = await site.admin(kms.url);
}

beforeAll(async () => {
  kmsToken = createTestToken();
  camToken = createTestToken();
  site = await makeKmsSite(['SOFT-1']);
  await site.kmsIdentity('kms-hsm', kmsToken.spec, 'kms-tls');
  await site.provision('HSM-1', camToken.spec);
  site.writeConfig(site.port, { identity: 'kms-hsm', batchWindow: '50ms' });
  await start();
  // restarts keep the address the cameras know
  site.writeConfig((kms as RunningKms).port, { identity: 'kms-hsm', batchWindow: '50ms' });
  for (const s of ['HSM-1', 'SOFT-1']) agents.push(await site.camera((kms as RunningKms).url, s));
}, 240_000);

afterAll(async () => {
  for (const a of agents) await a.close();
  admin?.close();
  await kms?.close();
  kmsToken?.cleanup();
  camToken?.cleanup();
});

describe('KMS with its key in a PKCS#11 token', () => {
  it('enrols a token camera and a software camera, distributes, and both hold the same epoch secret', async () => {
    for (const a of agents) expect(await a.camera.enrol()).toBe(1);
    await (admin as KmsClient).json('POST', '/v1/admin/groups', { id: 'vault', members: ['HSM-1', 'SOFT-1'], leader: 'HSM-1' });
    const secrets = [];
    for (const a of agents) {
      expect((await a.camera.sync('vault')).epoch).toBe(1);
      secrets.push(Buffer.from((await a.camera.hardenedMember('vault'))?.epochSecret() ?? []).toString('hex'));
    }
    expect(secrets[0]).toHaveLength(64);
    expect(secrets[0]).toBe(secrets[1]);
  });

  it('the sealing key and the pairwise keys live in the tokens, sensitive and never extractable', () => {
    const k = objects(kmsToken);
    for (const label of ['kms-state', 'gk-']) {
      const b = block(k, label);
      expect(b, label).toMatch(/Access:\s+sensitive, always sensitive, never extractable/);
    }
    expect(k.match(/label:\s+gk-/g)).toHaveLength(2); // one K_i per enrolled camera
    const c = block(objects(camToken), 'gk-');
    expect(c).toMatch(/Access:\s+sensitive, always sensitive, never extractable/);
  });

  it('survives a restart: the sealed state opens with the token key; a leave reaches the remaining camera', async () => {
    await (kms as RunningKms).close();
    await start();
    expect(await (admin as KmsClient).json('GET', '/v1/admin/groups/vault')).toMatchObject({ epoch: 1, members: ['HSM-1', 'SOFT-1'] });
    const r = await (admin as KmsClient).json<{ epoch: number }>('DELETE', '/v1/admin/groups/vault/members/SOFT-1');
    expect(r.epoch).toBe(2);
    const hsm = (agents[0] as { camera: GroupKeyCamera }).camera;
    const soft = (agents[1] as { camera: GroupKeyCamera }).camera;
    expect(await hsm.sync('vault')).toMatchObject({ status: 'applied', epoch: 2 });
    expect(await soft.sync('vault')).toMatchObject({ status: 'removed', epoch: 1 });
  });

  it('no file the KMS or the cameras wrote holds a private key, and none holds the epoch secret in the clear', async () => {
    const files = filesUnder(site.work).filter((f) => !f.includes(`${join('ca', 'keys')}`));
    expect(findPlaintextPrivateKeys(files)).toEqual([]);
    const secret = Buffer.from((await (agents[0] as { camera: GroupKeyCamera }).camera.hardenedMember('vault'))?.epochSecret() ?? []);
    expect(secret).toHaveLength(32);
    for (const f of files) {
      const b = readFileSync(f);
      expect(b.includes(secret), f).toBe(false);
      expect(b.includes(Buffer.from(secret.toString('hex'))), f).toBe(false);
    }
  });
});
