/**
 * The camera agent (`keyframe camera run --config camera.json`): the pipeline from the configured source into the
 * ring buffer under the group's current content key, the uploader draining the ring to the NVR, the group-key
 * provider following epochs, and a status file (0600, rewritten every second) that `keyframe camera status` reads.
 * A stop (SIGINT / SIGTERM) ends the session cleanly — the source stops, the signer closes the session, the end
 * record is written — then the uploader has a few seconds to send what is left (the end record) before exit.
 *
 * Memory is bounded: one GOP in the packager, the signer's open units, the ring's index (about 100 bytes per stored
 * fragment and 16 per record: a few MB for a multi-GB ring), one object in flight to the NVR.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { openKeyStore } from '../keystore/open.js';
import { readRoots, servername } from '../kms/open.js';
import { openDevice } from '../pki/device.js';
import { loadTlsIdentity, tlsClientOptions } from '../pki/tls.js';
import type { Logger } from '../server/log.js';
import { replaceFileSync } from '../util/fs.js';
import type { CameraConfig } from './config.js';
import { devicePipelineOptions } from './device.js';
import { FileSource } from './file-source.js';
import { createSource } from './sources/spec.js';
import { GroupKeyCamera } from './group-key.js';
import { GroupKeyProvider, type KeyStatus } from './keys.js';
import { runPipeline } from './pipeline.js';
import { Ring, type RingUsage } from './ring.js';
import type { SourceStatus } from './source.js';
import { Uploader, type UploaderStatus } from './uploader.js';

export interface CameraStatus {
  readonly v: 1;
  readonly pid: number;
  readonly updated: string;
  readonly serial: string;
  readonly state: 'starting' | 'recording' | 'stopping' | 'stopped' | 'failed';
  readonly source: SourceStatus;
  readonly session?: string;
  readonly scheme: 'cbcs' | 'cenc' | 'none';
  readonly keys?: KeyStatus;
  readonly ring: RingUsage;
  readonly upload?: UploaderStatus;
  readonly lastError?: string;
  readonly alarms: readonly string[];
}

export interface AgentOptions {
  readonly config: CameraConfig;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  /** How long a stop may spend uploading what is left (default 5 s). */
  readonly drainMs?: number;
}

export async function runCameraAgent(o: AgentOptions): Promise<void> {
  const { config, logger: log } = o;
  const device = await openDevice(config.device, config.keystore);
  const serial = device.config.serial;
  const ring = await Ring.open(config.ring.dir, config.ring.cap);
  const alarms: string[] = [];
  let lastError: string | undefined;
  let state: CameraStatus['state'] = 'starting';
  let session: string | undefined;
  const alarm = (detail: string): void => {
    alarms.push(`${new Date().toISOString()} ${detail}`);
    if (alarms.length > 20) alarms.shift();
    log.error({ event: 'alarm', detail }, detail);
  };
  const stopAll = new AbortController();
  const background: Promise<void>[] = [];
  let keys: GroupKeyProvider | undefined;
  let closeKms: (() => Promise<void>) | undefined;
  let uploader: Uploader | undefined;
  // the uploader's loop stops before the drain (which takes over), and with everything else
  const uploadStop = new AbortController();
  stopAll.signal.addEventListener('abort', () => uploadStop.abort(), { once: true });
  let uploading: Promise<void> = Promise.resolve();
  const source = config.source.kind === 'file' ? new FileSource({ path: config.source.path, fps: config.source.fps ?? 25 }) : createSource(config.source.spec);
  let statusDir = false;
  // rewritten every second: synchronously and without a flush (a status file need not survive a power cut)
  const writeStatus = async (): Promise<void> => {
    const status: CameraStatus = {
      v: 1,
      pid: process.pid,
      updated: new Date().toISOString(),
      serial,
      state,
      source: source.status(),
      ...(session !== undefined ? { session } : {}),
      scheme: keys !== undefined ? config.scheme : 'none',
      ...(keys !== undefined ? { keys: keys.status() } : {}),
      ring: ring.usage(),
      ...(uploader !== undefined ? { upload: uploader.status() } : {}),
      ...(lastError !== undefined ? { lastError } : {}),
      alarms,
    };
    try {
      if (!statusDir) mkdirSync(dirname(config.statusFile), { recursive: true, mode: 0o700 });
      statusDir = true;
      replaceFileSync(config.statusFile, `${JSON.stringify(status, null, 2)}\n`, 0o600);
    } catch (e) {
      log.warn({ event: 'status-write-failed', error: String(e) }, 'status file not written');
    }
  };
  const statusTimer = setInterval(() => void writeStatus(), 1_000);
  try {
    if (config.kms !== undefined) {
      const identity = loadTlsIdentity(config.device, config.keystore);
      const store = await openKeyStore(identity.keystore);
      const roots = readRoots(config.kms.root);
      const tls = await tlsClientOptions(identity, { roots }, servername(config.kms.url));
      const camera = new GroupKeyCamera({ url: config.kms.url, stateDir: config.kms.state, store, deviceKeyLabel: identity.keyLabel, chain: identity.chain, tls, kmsRoots: roots, trustName: `kms.root ${config.kms.root}` });
      closeKms = async () => {
        camera.close();
        await store.close();
      };
      const provider = new GroupKeyProvider({
        camera,
        group: config.kms.group,
        alarmAfterMs: config.kms.alarmAfterMs,
        onAlarm: (raised, detail) => (raised ? alarm(detail) : log.info({ event: 'alarm-cleared', detail }, detail)),
        onError: (e) => {
          lastError = `KMS: ${e instanceof Error ? e.message : String(e)}`;
          log.warn({ event: 'kms-error', error: lastError }, lastError);
        },
      });
      const k = await provider.start();
      keys = provider;
      log.info({ event: 'key', epoch: k.epoch, kid: Buffer.from(k.kid).toString('hex') }, `content key of epoch ${k.epoch}`);
      provider.onChange((nk) => log.info({ event: 'key-changed', epoch: nk.epoch, kid: Buffer.from(nk.kid).toString('hex') }, `new content key (epoch ${nk.epoch}): the next fragment uses it`));
      background.push(provider.run(stopAll.signal));
    } else {
      log.warn({ event: 'clear' }, 'no "kms" in the config: recording signed but NOT encrypted video');
    }
    if (config.nvr !== undefined) {
      const identity = loadTlsIdentity(config.device, config.keystore);
      const roots = readRoots(config.nvr.root);
      const tls = await tlsClientOptions(identity, { roots }, servername(config.nvr.url));
      const up = new Uploader({
        url: config.nvr.url,
        tls,
        serial,
        ring,
        backfillBytesPerSecond: config.backfillBytesPerSecond,
        live: config.chunkMs > 0,
        onAlarm: alarm,
        onEvent: (event, fields) => (event === 'uploaded' || event === 'ring-report' || event === 'streamed' ? log.debug({ event, ...fields }) : log.info({ event, ...fields }, event)),
      });
      uploader = up;
      uploading = up.run(uploadStop.signal);
      background.push(uploading);
    }
    state = 'recording';
    await writeStatus();
    log.info({ event: 'started', serial, source: source.status().description, ring: config.ring.dir, cap: config.ring.cap, nvr: config.nvr?.url, kms: config.kms?.url }, `camera ${serial} recording`);
    try {
      const sessions = await runPipeline(
        source.events(o.signal),
        ring,
        devicePipelineOptions(device, {
          ...(keys !== undefined ? { keys, scheme: config.scheme } : {}),
          ...fpsOption(config),
          ...(config.chunkMs > 0 ? { chunkMs: config.chunkMs } : {}),
          onSession: (s) => {
            session = s.session;
            log.info({ event: 'session', session: s.session, start: s.start.toISOString() }, `session ${s.session}`);
          },
          onFragment: (f) => log.debug({ event: 'fragment', session: f.session, seq: f.seq, seconds: f.seconds, kid: f.kid }),
        }),
      );
      for (const s of sessions) log.info({ event: 'session-end', session: s.session, fragments: s.fragments, seconds: s.seconds, reason: s.endReason }, `session ${s.session} ended (${s.fragments} fragments)`);
    } catch (e) {
      state = 'failed';
      lastError = e instanceof Error ? e.message : String(e);
      log.fatal({ event: 'failed', error: lastError }, lastError);
      throw e;
    }
    state = 'stopping';
    await writeStatus();
    if (uploader !== undefined) {
      uploadStop.abort();
      await uploading;
      const done = await uploader.drain(Date.now() + (o.drainMs ?? config.drainMs));
      log.info({ event: 'drained', complete: done, pending: ring.usage().pending }, done ? 'everything uploaded' : 'stopped with objects left to upload (sent on the next start)');
    }
    state = 'stopped';
  } finally {
    stopAll.abort();
    await Promise.allSettled(background);
    clearInterval(statusTimer);
    uploader?.close();
    await writeStatus();
    await ring.close();
    await closeKms?.();
    await device.close();
  }
}

/** The status file as `keyframe camera status` prints it. */
export function readCameraStatus(path: string): CameraStatus {
  return JSON.parse(readFileSync(path, 'utf8')) as CameraStatus;
}

export function formatCameraStatus(s: CameraStatus, now = Date.now()): string {
  const age = Math.round((now - Date.parse(s.updated)) / 1000);
  const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;
  const lines = [
    `camera ${s.serial}: ${s.state} (pid ${s.pid}, status ${age} s old${age > 5 && s.state === 'recording' ? ': the agent may not be running' : ''})`,
    `source: ${s.source.state}, ${s.source.description}, ${s.source.frames} frames, ${s.source.reconnects} reconnects${s.source.lastError !== undefined ? `, last error: ${s.source.lastError}` : ''}`,
    `session: ${s.session ?? '(none)'}`,
    s.keys !== undefined
      ? `keys: ${s.scheme}, group ${s.keys.group}, epoch ${s.keys.epoch}, KID ${s.keys.kid}${s.keys.alarm !== undefined ? `; ALARM: ${s.keys.alarm}` : ''}`
      : 'keys: none: signed, NOT encrypted',
    `ring: ${mb(s.ring.bytes)} of ${mb(s.ring.cap)} (${((100 * s.ring.bytes) / s.ring.cap).toFixed(0)} %), ${s.ring.sessions} sessions, ${s.ring.fragments} fragments, ${s.ring.lostFragments} lost before upload`,
    s.upload !== undefined
      ? `upload: ${s.upload.connected ? 'connected' : 'NOT connected'}, ${s.ring.pending} objects waiting, lag ${(s.ring.lagMs / 1000).toFixed(1)} s (oldest not yet acknowledged), ${s.upload.uploaded} uploaded, ${s.upload.streamed ?? 0} streamed live, ${s.upload.refused} refused`
      : 'upload: no NVR configured',
    `last error: ${s.lastError ?? s.upload?.lastError ?? 'none'}`,
  ];
  for (const a of s.alarms) lines.push(`alarm: ${a}`);
  return `${lines.join('\n')}\n`;
}

/** The frame rate the configuration names, if it names one (the pipeline otherwise takes the stream's). */
function fpsOption(config: CameraConfig): { fps?: number } {
  const fps = config.source.kind === 'file' ? config.source.fps : 'fps' in config.source.spec ? config.source.spec.fps : undefined;
  return typeof fps === 'number' ? { fps } : {};
}
