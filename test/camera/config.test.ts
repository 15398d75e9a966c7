/** camera.json: sources by spec, and no unencrypted video unless the file says so. */
import { describe, expect, it } from 'vitest';
import { parseCameraConfig } from '../../src/camera/config.js';

const base = { device: 'cam1', ring: { dir: 'ring', cap: 1 << 30 } };
const kms = { url: 'https://kms:8443', root: 'ca/operator.pem', group: 'lobby' };

describe('camera.json', () => {
  it('refuses a camera without a KMS unless "clear": true says so, and refuses "clear" beside a KMS', () => {
    expect(() => parseCameraConfig({ ...base, source: 'pattern' }, '/etc/kf/camera.json')).toThrow(/camera\.json: "kms" is required: the camera encrypts/);
    expect(parseCameraConfig({ ...base, source: 'pattern', clear: true }, '/etc/kf/camera.json').kms).toBeUndefined();
    expect(() => parseCameraConfig({ ...base, source: 'pattern', kms, clear: true }, '/etc/kf/camera.json')).toThrow(/"clear" cannot go with "kms"/);
  });

  it('takes any source spec (pattern, RTSP, file through ffmpeg) and the looped Annex-B file; a bad one is named', () => {
    const c = parseCameraConfig({ ...base, kms, source: 'pattern:width=320,height=180,fps=30' }, '/etc/kf/camera.json');
    expect(c.source).toMatchObject({ kind: 'spec', spec: { type: 'pattern', width: 320, height: 180, fps: 30 } });
    expect(parseCameraConfig({ ...base, kms, source: 'file:clips/lobby.mp4' }, '/etc/kf/camera.json').source).toMatchObject({ kind: 'spec', spec: { type: 'file', path: '/etc/kf/clips/lobby.mp4' } });
    expect(parseCameraConfig({ ...base, kms, source: { kind: 'file', path: 'a.h264', fps: 25 } }, '/etc/kf/camera.json').source).toEqual({ kind: 'file', path: '/etc/kf/a.h264', fps: 25 });
    const rtsp = parseCameraConfig({ ...base, kms, source: 'rtsp://user:secret@10.0.0.9/stream1' }, '/etc/kf/camera.json');
    expect(rtsp.source).toMatchObject({ kind: 'spec', spec: { type: 'rtsp' } });
    let message = '';
    try {
      parseCameraConfig({ ...base, kms, source: 'ftp://user:secret@x/y' }, '/etc/kf/camera.json');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/camera\.json: "source" is not a source: .*ftp/);
    expect(message).not.toContain('secret');
  });

  it('chunkMs (live streaming, default 200 ms; 0 turns it off) and drainTimeout (default 5 s), each named when wrong', () => {
    const c = parseCameraConfig({ ...base, kms, source: 'pattern' }, '/etc/kf/camera.json');
    expect([c.chunkMs, c.drainMs]).toEqual([200, 5_000]);
    const d = parseCameraConfig({ ...base, kms, source: 'pattern', chunkMs: 0, drainTimeout: '1m' }, '/etc/kf/camera.json');
    expect([d.chunkMs, d.drainMs]).toEqual([0, 60_000]);
    expect(() => parseCameraConfig({ ...base, kms, source: 'pattern', chunkMs: -1 }, '/etc/kf/camera.json')).toThrow(/camera\.json: "chunkMs" must be a whole number of milliseconds/);
    expect(() => parseCameraConfig({ ...base, kms, source: 'pattern', drainTimeout: 'soon' }, '/etc/kf/camera.json')).toThrow(/drainTimeout/);
  });
});
