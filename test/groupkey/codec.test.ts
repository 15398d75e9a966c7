/** The paper's messages: canonical encoding round trips (fast-check, every type) and strict rejection of malformed bytes. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, GroupKeyError } from '../../src/errors.js';
import { CT32_BYTES, CT64_BYTES, decodeMessage, encodeMessage, MESSAGE_TYPES } from '../../src/groupkey/paper/messages.js';
import type { MIC, PaperMessage, PaperMessageType } from '../../src/groupkey/paper/messages.js';

const bytes = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });
const b32 = bytes(32);
const utf8 = new TextEncoder();
const wellFormed = (s: string): boolean => new TextDecoder().decode(utf8.encode(s)) === s;
const id = fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).filter((s) => wellFormed(s) && utf8.encode(s).length <= 255);
const mic: fc.Arbitrary<MIC> = fc.record({ ID_G1: id, ID_IC: id, r_IC: b32, request: fc.constantFrom(null, 'join_request' as const, 'leave_request' as const) });
const egsk = (n: number): fc.Arbitrary<{ ID_IC: string; EGSK_IC: Uint8Array }> => fc.record({ ID_IC: id, EGSK_IC: bytes(n) });

const arbitraries: Record<PaperMessageType, fc.Arbitrary<PaperMessage>> = {
  MemberAuth: fc.record({ type: fc.constant('MemberAuth' as const), M_IC: mic, MAC_IC: b32 }),
  GroupAuth: fc.record({
    type: fc.constant('GroupAuth' as const),
    ID_G1: id,
    AuthM_G1: fc.record({ M: fc.array(mic, { minLength: 1, maxLength: 6 }), MAC_G1: b32 }),
    Er_G1: bytes(CT32_BYTES),
  }),
  KeyDelivery: fc.record({
    type: fc.constant('KeyDelivery' as const),
    ID_G1: id,
    Auth_ICM: fc.record({ r_ICM: b32, MAC_ICM: b32 }),
    EGSK: fc.array(egsk(CT32_BYTES), { maxLength: 6 }),
  }),
  MemberKey: fc.record({ type: fc.constant('MemberKey' as const), ID_G1: id, ID_IC: id, EGSK_IC: bytes(CT32_BYTES) }),
  MemberAck: fc.record({ type: fc.constant('MemberAck' as const), ID_G1: id, ID_IC: id, ACK_IC: b32 }),
  GroupAck: fc.record({ type: fc.constant('GroupAck' as const), ID_G1: id, ACK_G1: b32 }),
  RefreshAuth: fc.record({ type: fc.constant('RefreshAuth' as const), ID_G1: id, Auth_ICM: b32, EGSK_new: fc.option(egsk(CT64_BYTES), { nil: null }) }),
  NewMemberKey: fc.record({ type: fc.constant('NewMemberKey' as const), ID_G1: id, ID_IC: id, EGSK_IC: bytes(CT64_BYTES) }),
  Refresh: fc.record({ type: fc.constant('Refresh' as const), ID_G1: id, Engk_GSK: bytes(CT64_BYTES), Hngk_GSK: b32 }),
};
const anyMessage = fc.oneof(...MESSAGE_TYPES.map((t) => arbitraries[t]));

function rejects(data: Uint8Array, pattern?: RegExp): void {
  try {
    decodeMessage(data);
  } catch (e) {
    expect(e).toBeInstanceOf(GroupKeyError);
    expect((e as GroupKeyError).code).toBe(ErrorCodes.GROUPKEY_MESSAGE);
    if (pattern !== undefined) expect((e as GroupKeyError).message).toMatch(pattern);
    return;
  }
  throw new Error(`decoded malformed bytes ${Buffer.from(data).toString('hex')}`);
}

describe('paper message codec', () => {
  it.each(MESSAGE_TYPES)('%s round-trips, canonically', (type) => {
    fc.assert(
      fc.property(arbitraries[type], (m) => {
        const enc = encodeMessage(m);
        const dec = decodeMessage(enc);
        expect(dec).toEqual(m);
        expect(Buffer.from(encodeMessage(dec)).equals(Buffer.from(enc))).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it('every strict prefix and every extension of a valid message is refused', () => {
    fc.assert(
      fc.property(anyMessage, fc.uint8Array({ minLength: 1, maxLength: 4 }), (m, extra) => {
        const enc = encodeMessage(m);
        for (let cut = 0; cut < enc.length; cut++) rejects(enc.subarray(0, cut));
        rejects(Buffer.concat([enc, extra]), /trailing/);
      }),
      { numRuns: 60 },
    );
  });

  it('random bytes either decode to a message that re-encodes to the same bytes, or are a GroupKeyError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), anyMessage.chain((m) => fc.tuple(fc.constant(encodeMessage(m)), fc.nat(), fc.nat(255))).map(([b, i, v]) => {
        const c = Uint8Array.from(b);
        c[i % c.length] = v;
        return c;
      })), (data) => {
        let m: PaperMessage;
        try {
          m = decodeMessage(data);
        } catch (e) {
          expect(e).toBeInstanceOf(GroupKeyError);
          return;
        }
        expect(Buffer.from(encodeMessage(m)).equals(Buffer.from(data))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('names what is wrong: version, type, request code, flag, identifiers, counts', () => {
    const ack = encodeMessage({ type: 'GroupAck', ID_G1: 'G1', ACK_G1: new Uint8Array(32) });
    rejects(new Uint8Array(0), /version truncated/);
    rejects(Uint8Array.from([2, ...ack.subarray(1)]), /unknown message version 2/);
    rejects(Uint8Array.from([1, 0, ...ack.subarray(2)]), /unknown message type 0/);
    rejects(Uint8Array.from([1, 10, ...ack.subarray(2)]), /unknown message type 10/);
    // identifier of length 0, of 256 bytes, and not UTF-8
    rejects(Uint8Array.from([1, 6, 0, 0, ...new Uint8Array(32)]), /identifier of 0 bytes/);
    rejects(Uint8Array.from([1, 6, 1, 0, ...new Uint8Array(256 + 32)]), /identifier of 256 bytes/);
    rejects(Uint8Array.from([1, 6, 0, 2, 0xc3, 0x28, ...new Uint8Array(32)]), /UTF-8/);
    // M_IC request code 3
    const auth = encodeMessage({ type: 'MemberAuth', M_IC: { ID_G1: 'G1', ID_IC: 'c', r_IC: new Uint8Array(32), request: null }, MAC_IC: new Uint8Array(32) });
    const badReq = Uint8Array.from(auth);
    badReq[2 + 4 + 3 + 32] = 3;
    rejects(badReq, /request: unknown code 3/);
    // RefreshAuth flag 2
    const ra = encodeMessage({ type: 'RefreshAuth', ID_G1: 'G1', Auth_ICM: new Uint8Array(32), EGSK_new: null });
    const badFlag = Uint8Array.from(ra);
    badFlag[badFlag.length - 1] = 2;
    rejects(badFlag, /flag 2/);
    // GroupAuth with no M_IC
    rejects(Uint8Array.from([1, 2, 0, 2, 0x47, 0x31, 0, 0, ...new Uint8Array(32 + CT32_BYTES)]), /no M_IC/);
  });

  it('refuses to encode fields of the wrong size or identifiers out of range', () => {
    const bad = (m: PaperMessage, pattern: RegExp): void => {
      expect(() => encodeMessage(m)).toThrow(pattern);
    };
    bad({ type: 'GroupAck', ID_G1: 'G1', ACK_G1: new Uint8Array(31) }, /ACK_G1: 31 bytes, expected 32/);
    bad({ type: 'GroupAck', ID_G1: '', ACK_G1: new Uint8Array(32) }, /identifier of 0 bytes/);
    bad({ type: 'GroupAck', ID_G1: 'x'.repeat(256), ACK_G1: new Uint8Array(32) }, /identifier of 256 bytes/);
    bad({ type: 'MemberKey', ID_G1: 'G1', ID_IC: 'c', EGSK_IC: new Uint8Array(CT64_BYTES) }, /EGSK_IC: 80 bytes, expected 48/);
    bad({ type: 'GroupAuth', ID_G1: 'G1', AuthM_G1: { M: [], MAC_G1: new Uint8Array(32) }, Er_G1: new Uint8Array(CT32_BYTES) }, /no M_IC/);
  });
});
