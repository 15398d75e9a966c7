/** SEI: ff-coding round trips, user_data_unregistered with the ONVIF UUID, and ffmpeg decoding a stream with inserted SEIs. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MediaError } from '../../../src/errors.js';
import { buildSeiNal, nalType, NalType, parseRecoveryPoint, parseSei, parseUserDataUnregistered, userDataUnregistered, uuidBytes, writeAnnexB, type SeiMessage } from '../../../src/media/h264/index.js';
import { frameMd5s } from '../../helpers/media.js';
import { assemble, briefStreams, readStream } from './_streams.js';

const ONVIF_MEDIA_SIGNING = '005bc93f-2d71-5e95-ada4-796f90877a6f';
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const message = fc.record({
  payloadType: fc.oneof(fc.integer({ min: 0, max: 600 }), fc.constantFrom(5, 254, 255, 256, 510)),
  payload: fc.oneof(
    fc.array(fc.constantFrom(0, 0, 0, 1, 2, 3, 0x80, 255), { maxLength: 600 }).map((a) => Uint8Array.from(a)),
    fc.integer({ min: 0, max: 600 }).map((n) => new Uint8Array(n)),
    fc.uint8Array({ maxLength: 600 }),
  ),
});

describe('SEI build → parse', () => {
  it('round trip for payload sizes 0..600 and types up to 600 (ff-coding) (property)', () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 4 }), (messages) => {
        const nal = buildSeiNal(messages);
        expect(nal[0]).toBe(0x06);
        expect(nal[nal.length - 1]).toBe(0x80);
        const back = parseSei(nal);
        expect(back.map((m) => [m.payloadType, hex(m.payload)])).toEqual(messages.map((m) => [m.payloadType, hex(m.payload)]));
      }),
      { numRuns: 400 },
    );
  });

  it('ff-coding of type and size: 255 is ff 00, 300 is ff 2d', () => {
    const nal = buildSeiNal([{ payloadType: 255, payload: new Uint8Array(300).fill(0x11) }]);
    expect(hex(nal.subarray(0, 5))).toBe('06ff00ff2d');
  });

  it('any truncation is a MediaError, or (cut between messages) a prefix of the messages (property)', () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 3 }), fc.nat(), (messages, at) => {
        const nal = buildSeiNal(messages);
        const cut = nal.subarray(0, 1 + (at % (nal.length - 2)));
        try {
          const got = parseSei(cut);
          expect(got.length).toBeLessThanOrEqual(messages.length);
          got.forEach((m, i) => expect(hex(m.payload)).toBe(hex(messages[i]?.payload ?? new Uint8Array())));
        } catch (e) {
          expect(e).toBeInstanceOf(MediaError);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('refuses non-SEI NAL units, huge ff-runs and oversize sizes', () => {
    expect(() => parseSei(Uint8Array.from([0x67, 0x42]))).toThrow(/expected 6/);
    expect(() => parseSei(Uint8Array.from([0x06, 0x05, 0x10, 0x00, 0x80]))).toThrow(/overruns/);
    expect(() => parseSei(Uint8Array.from([0x06, ...new Array<number>(70_000).fill(0xff)]))).toThrow(MediaError);
    expect(() => parseSei(Uint8Array.from([0x06, 0xff]))).toThrow(/truncated/);
  });
});

describe('user_data_unregistered', () => {
  it('carries a 16-byte UUID and data: the ONVIF Media Signing UUID', () => {
    const uuid = uuidBytes(ONVIF_MEDIA_SIGNING);
    expect(hex(uuid)).toBe('005bc93f2d715e95ada4796f90877a6f');
    const data = Uint8Array.from([0, 0, 0, 1, 0, 0, 3, 0xaa]);
    const nal = buildSeiNal([userDataUnregistered(uuid, data)]);
    // the escaped NAL unit holds no start code even though the data does
    expect(hex(nal)).not.toMatch(/^(..)*000001/);
    const [msg] = parseSei(nal);
    expect(msg?.payloadType).toBe(5);
    const parsed = parseUserDataUnregistered(msg as SeiMessage);
    expect(hex(parsed.uuid)).toBe(hex(uuid));
    expect(hex(parsed.data)).toBe(hex(data));
  });

  it('refuses wrong UUID lengths, wrong payload types and short payloads', () => {
    expect(() => userDataUnregistered(new Uint8Array(15), new Uint8Array())).toThrow(MediaError);
    expect(() => parseUserDataUnregistered({ payloadType: 6, payload: new Uint8Array(20) })).toThrow(MediaError);
    expect(() => parseUserDataUnregistered({ payloadType: 5, payload: new Uint8Array(15) })).toThrow(MediaError);
    expect(() => uuidBytes('not-a-uuid')).toThrow(MediaError);
  });

  it('recovery point payloads parse', () => {
    // recovery_frame_cnt 0 ('1'), exact_match 1, broken_link 0, changing_slice_group_idc 0, then alignment
    expect(parseRecoveryPoint({ payloadType: 6, payload: Uint8Array.from([0b11000100]) })).toEqual({ recoveryFrameCnt: 0, exactMatch: true, brokenLink: false, changingSliceGroupIdc: 0 });
    expect(() => parseRecoveryPoint({ payloadType: 6, payload: new Uint8Array() })).toThrow(MediaError);
  });
});

describe('ffmpeg decodes a stream with inserted SEIs to the same pictures', () => {
  it('a user_data_unregistered SEI after the SPS/PPS of every IDR access unit changes no frame MD5', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kf-h264-sei-'));
    try {
      for (const stream of await briefStreams()) {
        const a = assemble(readStream(stream.path));
        const uuid = uuidBytes(ONVIF_MEDIA_SIGNING);
        let inserted = 0;
        const nals = a.aus.flatMap((au, i) => {
          if (!au.isIdr) return au.nals;
          // data with start-code patterns in it, to exercise escaping inside a real stream
          const sei = buildSeiNal([userDataUnregistered(uuid, Uint8Array.from([0, 0, 1, i & 0xff, 0, 0, 0, 0, 3, 0xff]))]);
          const lastPs = au.nals.reduce((last, nal, k) => (nalType(nal) === NalType.SPS || nalType(nal) === NalType.PPS ? k : last), -1);
          inserted++;
          return [...au.nals.slice(0, lastPs + 1), sei, ...au.nals.slice(lastPs + 1)];
        });
        const path = join(dir, 'with-sei.h264');
        writeFileSync(path, writeAnnexB(nals));
        const [original, withSei] = await Promise.all([frameMd5s(stream.path), frameMd5s(path)]);
        expect(original.length, stream.name).toBe(a.aus.length);
        expect(withSei, stream.name).toEqual(original);
        // our parser finds them again, each in its IDR access unit
        const again = assemble(readStream(path));
        expect(again.aus.length).toBe(a.aus.length);
        const found = again.aus.filter((au) =>
          au.nals.some((n) => nalType(n) === NalType.SEI && parseSei(n).some((m) => m.payloadType === 5 && hex(parseUserDataUnregistered(m).uuid) === hex(uuid))),
        );
        expect(found.length).toBe(inserted);
        expect(found.every((au) => au.isIdr)).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);
});
