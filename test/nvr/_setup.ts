/**
 * A site for the NVR suites: a CA (manufacturer root, factory CA, operator CA), the NVR's TLS identity (operator
 * CA, localhost / 127.0.0.1), cameras provisioned with software key stores, the CA's CRLs in a file, an nvr.json;
 * genuine recordings made by the camera pipeline (recordSession on a real x264 clip); and a camera-side test client
 * over node:https with the device's TLS identity. All real: files, key stores, certificates, sockets.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { request } from 'node:https';
import type { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordSession } from '../../src/camera/record.js';
import { issueAllCrls, initCa } from '../../src/pki/ca.js';
import { CaStore } from '../../src/pki/ca-store.js';
import { openDevice, provisionDevice } from '../../src/pki/device.js';
import { createSite } from '../../src/pki/site.js';
import { loadTlsIdentity, tlsClientOptions } from '../../src/pki/tls.js';
import type { KeyStore } from '../../src/keystore/types.js';
import { CHAIN_FILE, INIT_FILE, RECORDS_FILE, segmentSeq } from '../../src/recording/layout.js';
import { ingestPath } from '../../src/nvr/protocol.js';
import { runCli } from '../helpers/cli.js';
import { stablePort } from '../helpers/ports.js';
import { clip } from '../helpers/media.js';

export const PIN_ENV = 'KF_TEST_NVR_PIN';

export interface NvrSite {
  readonly work: string;
  readonly caDir: string;
  readonly ca: CaStore;
  readonly caStore: KeyStore;
  readonly crlFile: string;
  readonly configPath: string;
  readonly cameraDirs: Map<string, string>;
  /** Writes nvr.json (port 0 unless given) with `extra` settings; returns its path. */
  writeConfig(extra?: Record<string, unknown>): string;
  provision(serial: string): Promise<string>;
  /** Publishes the CA's CRLs (after a revocation) to the file the NVR watches. */
  publishCrls(): Promise<void>;
}

export async function makeNvrSite(serials: readonly string[], work = mkdtempSync(join(tmpdir(), 'kf-nvr-'))): Promise<NvrSite> {
  process.env[PIN_ENV] ??= 'nvr test passphrase';
  const spec = (dir: string): string => `file:${dir};pin-env=${PIN_ENV}`;
  const caDir = join(work, 'ca');
  await initCa({ dir: caDir, keystore: spec(join(caDir, 'keys')) });
  const ca = await CaStore.open(caDir);
  const caStore = await ca.openKeyStore();
  await createSite({ out: join(work, 'nvr'), ca, caKeyStore: caStore, name: 'localhost', altNames: ['localhost', '127.0.0.1'], keystore: spec(join(work, 'nvr', 'keys')) });
  const crlFile = join(caDir, 'crl.pem');
  const publishCrls = async (): Promise<void> => {
    const tmp = `${crlFile}.new`;
    writeFileSync(tmp, await issueAllCrls(ca, caStore, { days: 7 }));
    const { renameSync } = await import('node:fs');
    renameSync(tmp, crlFile);
  };
  await publishCrls();
  const cameraDirs = new Map<string, string>();
  const provision = async (serial: string): Promise<string> => {
    const dir = join(work, 'cams', serial);
    await provisionDevice({ ca, caKeyStore: caStore, dir, serial, keystore: spec(join(dir, 'keys')) });
    cameraDirs.set(serial, dir);
    return dir;
  };
  for (const s of serials) await provision(s);
  const configPath = join(work, 'nvr.json');
  const writeConfig = (extra: Record<string, unknown> = {}): string => {
    writeFileSync(
      configPath,
      JSON.stringify(
        { listen: { host: '127.0.0.1', port: 0 }, identity: 'nvr', trust: { root: 'ca/root.pem', factory: 'ca/factory.pem', operator: 'ca/operator.pem', crls: ['ca/crl.pem'] }, store: 'store', database: 'nvr.sqlite', freeSpaceFloor: 0, crlCheck: '200ms', ...extra },
        null,
        2,
      ),
    );
    return configPath;
  };
  writeConfig();
  return { work, caDir, ca, caStore, crlFile, configPath, cameraDirs, writeConfig, provision, publishCrls };
}

/** A genuine recording by camera `camDir`: `seconds` of a 1 s-GOP x264 clip, clear CMAF, started a minute ago. */
export async function recordFor(camDir: string, out: string, seconds = 3, start = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000)): Promise<string> {
  const source = await clip({ width: 320, height: 240, fps: 25, seconds: 2, gop: 25 });
  const device = await openDevice(camDir);
  try {
    await recordSession({ device, source, seconds, out, start, realTime: false });
  } finally {
    await device.close();
  }
  return out;
}

export interface Recording {
  readonly serial: string;
  readonly session: string;
  readonly chain: Buffer;
  readonly init: Buffer;
  readonly segments: Buffer[];
  /** records.jsonl lines, canonical JSON without the newline: [0] the session record. */
  readonly records: string[];
}

export function readRecording(dir: string): Recording {
  const records = readFileSync(join(dir, RECORDS_FILE), 'utf8').split('\n').filter((l) => l !== '');
  const first = JSON.parse(records[0] as string) as { session: string; serial: string };
  const segs = readdirSync(dir)
    .filter((n) => segmentSeq(n) !== undefined)
    .sort((a, b) => (segmentSeq(a) as number) - (segmentSeq(b) as number))
    .map((n) => readFileSync(join(dir, n)));
  return { serial: first.serial, session: first.session, chain: readFileSync(join(dir, CHAIN_FILE)), init: readFileSync(join(dir, INIT_FILE)), segments: segs, records };
}

export interface Answer {
  readonly status: number;
  readonly body: string;
  json<T = Record<string, unknown>>(): T;
}

/** A camera's side of the protocol over node:https, with the device's TLS identity. */
export class CameraClient {
  private constructor(
    private readonly url: URL,
    private readonly tls: Awaited<ReturnType<typeof tlsClientOptions>>,
    private readonly agent?: Agent,
  ) {}

  static async open(url: string, camDir: string, operatorRoot: string, agent?: Agent): Promise<CameraClient> {
    const { parseCertificates } = await import('../../src/pki/pem.js');
    const roots = parseCertificates(readFileSync(operatorRoot), operatorRoot);
    const tls = await tlsClientOptions(loadTlsIdentity(camDir), { roots }, 'localhost');
    return new CameraClient(new URL(url), tls, agent);
  }

  send(method: string, path: string, body?: Uint8Array | string, headers: Record<string, string> = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(body);
      const req = request(
        {
          ...this.tls,
          host: this.url.hostname,
          port: this.url.port,
          method,
          path,
          agent: this.agent ?? false,
          headers: { ...(data !== undefined ? { 'content-type': 'application/octet-stream', 'content-length': String(data.length) } : {}), ...headers },
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, json: <T>() => JSON.parse(text) as T }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  }

  /** A PUT streamed as a camera streams a segment while producing it: chunked, no Content-Length or Content-Type. */
  putChunked(path: string, body: Uint8Array, pieces = 3): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = request({ ...this.tls, host: this.url.hostname, port: this.url.port, method: 'PUT', path, agent: this.agent ?? false }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, json: <T>() => JSON.parse(text) as T }));
        res.on('error', reject);
      });
      req.on('error', reject);
      const step = Math.ceil(body.length / pieces);
      let at = 0;
      const next = (): void => {
        if (at >= body.length) {
          req.end();
          return;
        }
        req.write(body.subarray(at, at + step));
        at += step;
        setTimeout(next, 50);
      };
      next();
    });
  }

  put(serial: string, session: string, kind: 'chain' | 'init' | 'seg' | 'rec', body: Uint8Array | string, index?: number): Promise<Answer> {
    const path = kind === 'seg' || kind === 'rec' ? ingestPath({ kind, serial, session, index: index ?? 0 }) : ingestPath({ kind, serial, session });
    return this.send('PUT', path, body);
  }

  have(serial: string, session: string): Promise<Answer> {
    return this.send('GET', ingestPath({ kind: 'have', serial, session }));
  }

  /** Uploads a whole recording in protocol order (chain, init, rec/0, then each segment and its record, the end). */
  async upload(r: Recording, order: 'live' | 'records-first' = 'live'): Promise<number[]> {
    const statuses: number[] = [];
    const put = async (kind: 'chain' | 'init' | 'seg' | 'rec', body: Uint8Array | string, index?: number): Promise<void> => {
      statuses.push((await this.put(r.serial, r.session, kind, body, index)).status);
    };
    await put('chain', r.chain);
    await put('init', r.init);
    await put('rec', r.records[0] as string, 0);
    if (order === 'records-first') for (let i = 1; i < r.records.length; i++) await put('rec', r.records[i] as string, i);
    for (let s = 0; s < r.segments.length; s++) {
      await put('seg', r.segments[s] as Buffer, s);
      if (order === 'live') await put('rec', r.records[s + 1] as string, s + 1);
    }
    if (order === 'live') for (let i = r.segments.length + 1; i < r.records.length; i++) await put('rec', r.records[i] as string, i);
    return statuses;
  }
}

/** An NVR made by `keyframe nvr init` for a process-level test: its config, and a way to move its listener. */
export interface NvrHome {
  readonly dir: string;
  readonly config: string;
  /** Rewrites the config to listen on 127.0.0.1:`port` (0: any), with the extra settings given at init. */
  readonly listen: (port: number) => void;
}

/** `keyframe nvr init --dir WORK/nvr-home` (free-space floor 0), listening on 127.0.0.1 on any port. */
export async function initNvrHome(site: NvrSite, env: NodeJS.ProcessEnv, extra: Record<string, unknown> = {}): Promise<NvrHome> {
  const dir = join(site.work, 'nvr-home');
  const init = await runCli(['nvr', 'init', '--dir', dir, '--ca', site.caDir, '--free-space-floor', '0'], env);
  if (init.code !== 0) throw new Error(`nvr init failed (${init.code}): ${init.stderr}`);
  const config = join(dir, 'nvr.json');
  const base = JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>;
  const listen = (port: number): void => writeFileSync(config, JSON.stringify({ ...base, ...extra, listen: { host: '127.0.0.1', port } }));
  // a port kept across the restarts these tests make (test/helpers/ports.ts)
  listen(await stablePort());
  return { dir, config, listen };
}
