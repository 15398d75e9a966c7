/** AnnexBSplitter output is never a view of the caller's chunk, whatever the chunk's class (Buffer#slice is a view). */
import { describe, expect, it } from 'vitest';
import { AnnexBSplitter } from '../../../src/media/h264/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('AnnexBSplitter copies', () => {
  it('NAL units from Buffer chunks survive the reuse of the chunk, and are plain Uint8Arrays', () => {
    const s = new AnnexBSplitter();
    const first = Buffer.from('00000001674200000168ce0000016588', 'hex');
    const nals = s.push(first);
    const tail = Buffer.from('84000001', 'hex');
    nals.push(...s.push(tail));
    first.fill(0xee);
    tail.fill(0xee);
    nals.push(...s.flush());
    expect(nals.map(hex)).toEqual(['6742', '68ce', '658884']);
    for (const nal of nals) {
      expect(Buffer.isBuffer(nal)).toBe(false);
      expect(nal.buffer).not.toBe(first.buffer);
      // slice copies, as on any Uint8Array
      const c = nal.slice();
      c[0] = 0;
      expect(nal[0]).not.toBe(0);
    }
  });

  it('a NAL unit split across chunks, with the start code split too', () => {
    const s = new AnnexBSplitter();
    const out: Uint8Array[] = [];
    for (const h of ['0000016742', '1100', '00', '01', '68', 'ce00000001', '09f0']) out.push(...s.push(Buffer.from(h, 'hex')));
    out.push(...s.flush());
    expect(out.map(hex)).toEqual(['674211', '68ce', '09f0']);
  });
});
