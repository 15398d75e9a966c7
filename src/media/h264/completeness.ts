/**
 * Is a coded picture complete? Walks the slice data (7.3.4) of every slice of an access unit, macroblock by
 * macroblock, through the CAVLC syntax (9.2): mb_skip_run, mb_type, the prediction syntax, coded_block_pattern,
 * mb_qp_delta and every residual block's coeff_token, levels, total_zeros and run_before — consuming the bits
 * exactly as a decoder does, without reconstructing a sample. A slice whose data ends before its stop bit, runs
 * out of bits in a macroblock, or holds an impossible code is damaged; a picture whose slices do not cover all
 * of its macroblocks is incomplete. This is how a file cut in the middle of its last NAL unit is told from a
 * complete one: nothing in an Annex-B stream marks the end of a picture.
 *
 * Covered: CAVLC (entropy_coding_mode_flag 0) I and P slices of frame pictures, 4:2:0 or monochrome, 8-bit or
 * more, one slice group — what Baseline/Constrained Baseline encoders and camera profiles without CABAC write.
 * Anything else (CABAC, B, SP/SI, field or MBAFF pictures, 4:2:2/4:4:4, slice groups, the 8x8 transform) answers
 * 'unknown': the check says nothing rather than guess.
 */
import { MediaError } from '../../errors.js';
import { _BitReader } from './_bits.js';
import { NalType, nalType } from './nal.js';
import type { Pps } from './pps.js';
import { unescapeRbsp } from './rbsp.js';
import { parseSliceHeader } from './slice.js';
import type { SliceHeader } from './slice.js';
import type { Sps } from './sps.js';

/** Table 9-5, coeff_token, 0 <= nC < 2, 2 <= nC < 4, 4 <= nC < 8: [TotalCoeff][TrailingOnes] → codeword. */
const COEFF_TOKEN: readonly (readonly (readonly string[])[])[] = [
  [
    ['1', '', '', ''],
    ['000101', '01', '', ''],
    ['00000111', '000100', '001', ''],
    ['000000111', '00000110', '0000101', '00011'],
    ['0000000111', '000000110', '00000101', '000011'],
    ['00000000111', '0000000110', '000000101', '0000100'],
    ['0000000001111', '00000000110', '0000000101', '00000100'],
    ['0000000001011', '0000000001110', '00000000101', '000000100'],
    ['0000000001000', '0000000001010', '0000000001101', '0000000100'],
    ['00000000001111', '00000000001110', '0000000001001', '00000000100'],
    ['00000000001011', '00000000001010', '00000000001101', '0000000001100'],
    ['000000000001111', '000000000001110', '00000000001001', '00000000001100'],
    ['000000000001011', '000000000001010', '000000000001101', '00000000001000'],
    ['0000000000001111', '000000000000001', '000000000001001', '000000000001100'],
    ['0000000000001011', '0000000000001110', '0000000000001101', '000000000001000'],
    ['0000000000000111', '0000000000001010', '0000000000001001', '0000000000001100'],
    ['0000000000000100', '0000000000000110', '0000000000000101', '0000000000001000'],
  ],
  [
    ['11', '', '', ''],
    ['001011', '10', '', ''],
    ['000111', '00111', '011', ''],
    ['0000111', '001010', '001001', '0101'],
    ['00000111', '000110', '000101', '0100'],
    ['00000100', '0000110', '0000101', '00110'],
    ['000000111', '00000110', '00000101', '001000'],
    ['00000001111', '000000110', '000000101', '000100'],
    ['00000001011', '00000001110', '00000001101', '0000100'],
    ['000000001111', '00000001010', '00000001001', '000000100'],
    ['000000001011', '000000001110', '000000001101', '00000001100'],
    ['000000001000', '000000001010', '000000001001', '00000001000'],
    ['0000000001111', '0000000001110', '0000000001101', '000000001100'],
    ['0000000001011', '0000000001010', '0000000001001', '0000000001100'],
    ['0000000000111', '00000000001011', '0000000000110', '0000000001000'],
    ['00000000001001', '00000000001000', '00000000001010', '0000000000001'],
    ['00000000000111', '00000000000110', '00000000000101', '00000000000100'],
  ],
  [
    ['1111', '', '', ''],
    ['001111', '1110', '', ''],
    ['001011', '01111', '1101', ''],
    ['001000', '01100', '01110', '1100'],
    ['0001111', '01010', '01011', '1011'],
    ['0001011', '01000', '01001', '1010'],
    ['0001001', '001110', '001101', '1001'],
    ['0001000', '001010', '001001', '1000'],
    ['00001111', '0001110', '0001101', '01101'],
    ['00001011', '00001110', '0001010', '001100'],
    ['000001111', '00001010', '00001101', '0001100'],
    ['000001011', '000001110', '00001001', '00001100'],
    ['000001000', '000001010', '000001101', '00001000'],
    ['0000001101', '000000111', '000001001', '000001100'],
    ['0000001001', '0000001100', '0000001011', '0000001010'],
    ['0000000101', '0000001000', '0000000111', '0000000110'],
    ['0000000001', '0000000100', '0000000011', '0000000010'],
  ],
];
/** Table 9-5, coeff_token, nC == -1 (chroma DC, 4:2:0): [TotalCoeff][TrailingOnes] → codeword. */
const COEFF_TOKEN_CHROMA_DC: readonly (readonly string[])[] = [
  ['01', '', '', ''],
  ['000111', '1', '', ''],
  ['000100', '000110', '001', ''],
  ['000011', '0000011', '0000010', '000101'],
  ['000010', '00000011', '00000010', '0000000'],
];
/** Tables 9-7 and 9-8, total_zeros of 4x4 blocks: [TotalCoeff - 1][total_zeros] → codeword. */
const TOTAL_ZEROS: readonly (readonly string[])[] = [
  ['1', '011', '010', '0011', '0010', '00011', '00010', '000011', '000010', '0000011', '0000010', '00000011', '00000010', '000000011', '000000010', '000000001'],
  ['111', '110', '101', '100', '011', '0101', '0100', '0011', '0010', '00011', '00010', '000011', '000010', '000001', '000000'],
  ['0101', '111', '110', '101', '0100', '0011', '100', '011', '0010', '00011', '00010', '000001', '00001', '000000'],
  ['00011', '111', '0101', '0100', '110', '101', '100', '0011', '011', '0010', '00010', '00001', '00000'],
  ['0101', '0100', '0011', '111', '110', '101', '100', '011', '0010', '00001', '0001', '00000'],
  ['000001', '00001', '111', '110', '101', '100', '011', '010', '0001', '001', '000000'],
  ['000001', '00001', '101', '100', '011', '11', '010', '0001', '001', '000000'],
  ['000001', '0001', '00001', '011', '11', '10', '010', '001', '000000'],
  ['000001', '000000', '0001', '11', '10', '001', '01', '00001'],
  ['00001', '00000', '001', '11', '10', '01', '0001'],
  ['0000', '0001', '001', '010', '1', '011'],
  ['0000', '0001', '01', '1', '001'],
  ['000', '001', '1', '01'],
  ['00', '01', '1'],
  ['0', '1'],
];
/** Table 9-9 (a), total_zeros of chroma DC 2x2 blocks: [TotalCoeff - 1][total_zeros] → codeword. */
const TOTAL_ZEROS_CHROMA_DC: readonly (readonly string[])[] = [
  ['1', '01', '001', '000'],
  ['1', '01', '00'],
  ['1', '0'],
];
/** Table 9-10, run_before: [min(zerosLeft, 7) - 1][run_before] → codeword. */
const RUN_BEFORE: readonly (readonly string[])[] = [
  ['1', '0'],
  ['1', '01', '00'],
  ['11', '10', '01', '00'],
  ['11', '10', '01', '001', '000'],
  ['11', '10', '011', '010', '001', '000'],
  ['11', '000', '001', '011', '010', '101', '100'],
  ['111', '110', '101', '100', '011', '010', '001', '0001', '00001', '000001', '0000001', '00000001', '000000001', '0000000001', '00000000001'],
];

/** Table 9-4: coded_block_pattern codeNum → value (chroma bits 4–5), intra (Intra_4x4) and inter, ChromaArrayType 1 or 2. */
const CBP_INTRA = [47, 31, 15, 0, 23, 27, 29, 30, 7, 11, 13, 14, 39, 43, 45, 46, 16, 3, 5, 10, 12, 19, 21, 26, 28, 35, 37, 42, 44, 1, 2, 4, 8, 17, 18, 20, 24, 6, 9, 22, 25, 32, 33, 34, 36, 40, 38, 41];
const CBP_INTER = [0, 16, 1, 2, 4, 8, 32, 3, 5, 10, 12, 15, 47, 7, 11, 13, 14, 6, 9, 31, 35, 37, 42, 44, 33, 34, 36, 40, 39, 43, 45, 46, 17, 18, 20, 24, 19, 21, 26, 28, 23, 27, 29, 30, 22, 25, 38, 41];
/** Table 9-4 for ChromaArrayType 0 or 3 (no chroma bits). */
const CBP_INTRA_MONO = [15, 0, 7, 11, 13, 14, 3, 5, 10, 12, 1, 2, 4, 8, 6, 9];
const CBP_INTER_MONO = [0, 1, 2, 4, 8, 3, 5, 10, 12, 15, 7, 11, 13, 14, 6, 9];

/** A prefix code: codeword → value, decoded bit by bit. */
class Vlc {
  private readonly codes = new Map<string, number>();
  private readonly maxLength: number;

  constructor(entries: Iterable<[string, number]>) {
    let max = 0;
    for (const [code, value] of entries) {
      if (code === '') continue;
      this.codes.set(code, value);
      max = Math.max(max, code.length);
    }
    this.maxLength = max;
  }

  read(r: _BitReader, what: string): number {
    let code = '';
    while (code.length < this.maxLength) {
      code += r.bit() === 1 ? '1' : '0';
      const v = this.codes.get(code);
      if (v !== undefined) return v;
    }
    throw new MediaError(`slice data: no ${what} codeword starts ${code}`);
  }
}

/** coeff_token values: TotalCoeff * 4 + TrailingOnes. */
function tokenVlc(table: readonly (readonly string[])[]): Vlc {
  return new Vlc(table.flatMap((row, tc) => row.map((code, t1): [string, number] => [code, tc * 4 + t1])));
}
function listVlc(codes: readonly string[]): Vlc {
  return new Vlc(codes.map((code, v): [string, number] => [code, v]));
}

let tables: { token: Vlc[]; tokenChromaDc: Vlc; totalZeros: Vlc[]; totalZerosChromaDc: Vlc[]; runBefore: Vlc[] } | undefined;
function vlcs(): NonNullable<typeof tables> {
  tables ??= {
    token: COEFF_TOKEN.map(tokenVlc),
    tokenChromaDc: tokenVlc(COEFF_TOKEN_CHROMA_DC),
    totalZeros: TOTAL_ZEROS.map(listVlc),
    totalZerosChromaDc: TOTAL_ZEROS_CHROMA_DC.map(listVlc),
    runBefore: RUN_BEFORE.map(listVlc),
  };
  return tables;
}

/** residual_block_cavlc (7.3.5.3.2): consumes one block; returns TotalCoeff. nC −1: chroma DC of 4:2:0. */
function residualBlock(r: _BitReader, nC: number, maxNumCoeff: number): number {
  const t = vlcs();
  let token: number;
  if (nC === -1) token = t.tokenChromaDc.read(r, 'coeff_token');
  else if (nC >= 8) {
    const v = r.u(6);
    token = v === 3 ? 0 : (((v >> 2) + 1) << 2) | (v & 3);
    if (v !== 3 && (v & 3) > (v >> 2) + 1) throw new MediaError('slice data: impossible fixed-length coeff_token');
  } else token = (t.token[nC < 2 ? 0 : nC < 4 ? 1 : 2] as Vlc).read(r, 'coeff_token');
  const totalCoeff = token >> 2;
  const trailingOnes = token & 3;
  if (totalCoeff > maxNumCoeff) throw new MediaError(`slice data: ${totalCoeff} coefficients in a block of ${maxNumCoeff}`);
  if (totalCoeff === 0) return 0;
  let suffixLength = totalCoeff > 10 && trailingOnes < 3 ? 1 : 0;
  for (let i = 0; i < totalCoeff; i++) {
    if (i < trailingOnes) {
      r.bit(); // trailing_ones_sign_flag
      continue;
    }
    let prefix = 0;
    while (r.bit() === 0) {
      prefix++;
      if (prefix > 31) throw new MediaError('slice data: level_prefix too long');
    }
    let levelCode = Math.min(15, prefix) * 2 ** suffixLength;
    if (suffixLength > 0 || prefix >= 14) {
      const size = prefix === 14 && suffixLength === 0 ? 4 : prefix >= 15 ? prefix - 3 : suffixLength;
      if (size > 0) levelCode += r.u(size);
    }
    if (prefix >= 15 && suffixLength === 0) levelCode += 15;
    if (prefix >= 16) levelCode += 2 ** (prefix - 3) - 4096;
    if (i === trailingOnes && trailingOnes < 3) levelCode += 2;
    const magnitude = levelCode % 2 === 0 ? (levelCode + 2) / 2 : (levelCode + 1) / 2;
    if (suffixLength === 0) suffixLength = 1;
    if (magnitude > 3 * 2 ** (suffixLength - 1) && suffixLength < 6) suffixLength++;
  }
  let zerosLeft = 0;
  if (totalCoeff < maxNumCoeff) {
    zerosLeft = nC === -1 ? (t.totalZerosChromaDc[totalCoeff - 1] as Vlc).read(r, 'total_zeros') : (t.totalZeros[totalCoeff - 1] as Vlc).read(r, 'total_zeros');
  }
  if (zerosLeft > maxNumCoeff - totalCoeff) throw new MediaError('slice data: total_zeros out of range');
  for (let i = 0; i < totalCoeff - 1 && zerosLeft > 0; i++) {
    const run = (t.runBefore[Math.min(zerosLeft, 7) - 1] as Vlc).read(r, 'run_before');
    if (run > zerosLeft) throw new MediaError('slice data: run_before out of range');
    zerosLeft -= run;
  }
  return totalCoeff;
}

/** What a neighbour macroblock contributes to nC (9.2.1). */
interface MbCoeffs {
  /** TotalCoeff per luma 4x4 block, by position (x + 4 * y). */
  readonly luma: Uint8Array;
  /** TotalCoeff per chroma AC 4x4 block of Cb and Cr, by position (x + 2 * y). */
  readonly chroma: [Uint8Array, Uint8Array];
}

/** Luma 4x4 block index (8x8 blocks in raster order, 4x4 blocks in raster order within each) → x, y in blocks. */
function blockXY(idx: number): [number, number] {
  const b8 = idx >> 2;
  const b4 = idx & 3;
  return [(b8 & 1) * 2 + (b4 & 1), (b8 >> 1) * 2 + (b4 >> 1)];
}

export type PictureCheck =
  | { readonly status: 'complete'; readonly macroblocks: number }
  | { readonly status: 'incomplete'; readonly macroblocks: number; readonly expected: number; readonly reason: string }
  | { readonly status: 'unknown'; readonly reason: string };

interface SliceWalk {
  readonly first: number;
  readonly count: number;
}

/** Walks one CAVLC slice; returns the macroblocks it covers, or throws a MediaError where its data is damaged. */
function walkSlice(nal: Uint8Array, h: SliceHeader, sps: Sps): SliceWalk {
  const { rbsp } = unescapeRbsp(nal);
  const r = new _BitReader(rbsp, 0, 'slice data');
  r.skip(8 + h.headerBits);
  const width = sps.picWidthInMbs;
  const picSize = width * sps.picHeightInMapUnits;
  const mono = sps.chromaArrayType === 0;
  const pcmBits = 256 * sps.bitDepthLuma + (mono ? 0 : 2 * 64 * sps.bitDepthChroma);
  const coded = new Map<number, MbCoeffs>();
  const zero = (): MbCoeffs => ({ luma: new Uint8Array(16), chroma: [new Uint8Array(4), new Uint8Array(4)] });
  const lumaNc = (addr: number, cur: MbCoeffs, x: number, y: number): number => {
    const a = x > 0 ? cur.luma[x - 1 + 4 * y] : addr % width > 0 ? coded.get(addr - 1)?.luma[3 + 4 * y] : undefined;
    const b = y > 0 ? cur.luma[x + 4 * (y - 1)] : coded.get(addr - width)?.luma[x + 12];
    if (a !== undefined && b !== undefined) return (a + b + 1) >> 1;
    return a ?? b ?? 0;
  };
  const chromaNc = (addr: number, cur: MbCoeffs, c: 0 | 1, x: number, y: number): number => {
    const a = x > 0 ? cur.chroma[c][x - 1 + 2 * y] : addr % width > 0 ? coded.get(addr - 1)?.chroma[c][1 + 2 * y] : undefined;
    const b = y > 0 ? cur.chroma[c][x] : coded.get(addr - width)?.chroma[c][x + 2];
    if (a !== undefined && b !== undefined) return (a + b + 1) >> 1;
    return a ?? b ?? 0;
  };
  const refIdx = (): void => {
    if (h.numRefIdxL0Active > 1) {
      if (h.numRefIdxL0Active === 2) r.bit();
      else r.ueIn('ref_idx_l0', 0, h.numRefIdxL0Active - 1);
    }
  };
  const mvd = (): void => {
    r.se();
    r.se();
  };

  const macroblock = (addr: number): MbCoeffs => {
    const cur = zero();
    let mbType = r.ue();
    let intra: boolean;
    if (h.sliceKind === 'P') {
      if (mbType > 30) throw new MediaError(`slice data: mb_type ${mbType} in a P slice`);
      intra = mbType >= 5;
      if (intra) mbType -= 5;
    } else {
      if (mbType > 25) throw new MediaError(`slice data: mb_type ${mbType} in an I slice`);
      intra = true;
    }
    if (intra && mbType === 25) {
      // I_PCM: aligned raw samples
      while (!r.byteAligned) if (r.bit() !== 0) throw new MediaError('slice data: pcm_alignment_zero_bit is 1');
      r.skip(pcmBits);
      cur.luma.fill(16);
      cur.chroma[0].fill(16);
      cur.chroma[1].fill(16);
      return cur;
    }
    const intra16 = intra && mbType >= 1;
    let cbpLuma: number;
    let cbpChroma: number;
    if (intra) {
      if (mbType === 0) {
        // I_NxN (Intra_4x4: transform_size_8x8_flag is absent, the 8x8 transform answers 'unknown' earlier)
        for (let i = 0; i < 16; i++) if (r.bit() === 0) r.u(3);
      }
      if (!mono) r.ueIn('intra_chroma_pred_mode', 0, 3);
    } else if (mbType === 3 || mbType === 4) {
      // P_8x8, P_8x8ref0: four sub-macroblocks
      const subTypes = [r.ueIn('sub_mb_type', 0, 3), r.ueIn('sub_mb_type', 0, 3), r.ueIn('sub_mb_type', 0, 3), r.ueIn('sub_mb_type', 0, 3)];
      if (mbType === 3) for (let i = 0; i < 4; i++) refIdx();
      for (const s of subTypes) for (let i = 0; i < (s === 0 ? 1 : s === 3 ? 4 : 2); i++) mvd();
    } else {
      const parts = mbType === 0 ? 1 : 2;
      for (let i = 0; i < parts; i++) refIdx();
      for (let i = 0; i < parts; i++) mvd();
    }
    if (intra16) {
      cbpLuma = mbType >= 13 ? 15 : 0;
      cbpChroma = Math.floor((mbType - 1) / 4) % 3;
    } else {
      const table = mono ? (intra ? CBP_INTRA_MONO : CBP_INTER_MONO) : intra ? CBP_INTRA : CBP_INTER;
      const cbp = table[r.ueIn('coded_block_pattern', 0, table.length - 1)] as number;
      cbpLuma = cbp & 15;
      cbpChroma = cbp >> 4;
    }
    if (cbpLuma === 0 && cbpChroma === 0 && !intra16) return cur;
    r.seIn('mb_qp_delta', -26 - 6 * (sps.bitDepthLuma - 8), 25 + 6 * (sps.bitDepthLuma - 8));
    if (intra16) residualBlock(r, lumaNc(addr, cur, 0, 0), 16); // Intra16x16DCLevel (its count is not kept)
    for (let idx = 0; idx < 16; idx++) {
      if ((cbpLuma & (1 << (idx >> 2))) === 0) continue;
      const [x, y] = blockXY(idx);
      cur.luma[x + 4 * y] = residualBlock(r, lumaNc(addr, cur, x, y), intra16 ? 15 : 16);
    }
    if (!mono) {
      if ((cbpChroma & 3) !== 0) for (let c = 0; c < 2; c++) residualBlock(r, -1, 4);
      if ((cbpChroma & 2) !== 0) {
        for (const c of [0, 1] as const) {
          for (let i = 0; i < 4; i++) {
            const x = i & 1;
            const y = i >> 1;
            cur.chroma[c][x + 2 * y] = residualBlock(r, chromaNc(addr, cur, c, x, y), 15);
          }
        }
      }
    }
    return cur;
  };

  let addr = h.firstMbInSlice;
  let count = 0;
  let more = true;
  while (more) {
    if (h.sliceKind === 'P') {
      const run = r.ue();
      if (addr + run > picSize) throw new MediaError('slice data: mb_skip_run beyond the picture');
      for (let i = 0; i < run; i++) coded.set(addr++, zero());
      count += run;
      if (run > 0) more = r.moreRbspData();
    }
    if (more) {
      if (addr >= picSize) throw new MediaError('slice data: more macroblocks than the picture has');
      coded.set(addr, macroblock(addr));
      addr++;
      count++;
    }
    more = r.moreRbspData();
  }
  // after the last macroblock: rbsp_stop_one_bit, then zero bits to the end
  if (r.bit() !== 1) throw new MediaError('slice data: no rbsp_stop_one_bit');
  return { first: h.firstMbInSlice, count };
}

/** Why a picture cannot be walked here, or undefined when it can. */
function unsupported(h: SliceHeader, sps: Sps, pps: Pps): string | undefined {
  if (pps.entropyCodingModeFlag) return 'CABAC';
  if (h.sliceKind !== 'I' && h.sliceKind !== 'P') return `${h.sliceKind} slices`;
  if (!sps.frameMbsOnly) return 'field or MBAFF coding';
  if (sps.chromaArrayType !== 0 && sps.chromaArrayType !== 1) return `chroma format ${sps.chromaFormatIdc}`;
  if (pps.numSliceGroups > 1) return 'slice groups';
  if (pps.transform8x8Mode === true) return 'the 8x8 transform';
  if (sps.qpprimeYZeroTransformBypass) return 'lossless coding';
  return undefined;
}

/**
 * Checks the primary coded picture of an access unit (its NAL units as the assembler grouped them) for
 * completeness: every slice walks to its stop bit and the slices cover every macroblock.
 */
export function checkPicture(nals: readonly Uint8Array[], spsById: ReadonlyMap<number, Sps>, ppsById: ReadonlyMap<number, Pps>): PictureCheck {
  const slices: { nal: Uint8Array; h: SliceHeader }[] = [];
  for (const nal of nals) {
    const t = nalType(nal);
    if (t !== NalType.SLICE && t !== NalType.IDR) {
      if (t === NalType.DPA) return { status: 'unknown', reason: 'data partitioning' };
      continue;
    }
    let h: SliceHeader;
    try {
      h = parseSliceHeader(nal, spsById, ppsById);
    } catch (e) {
      if (e instanceof MediaError) return { status: 'incomplete', macroblocks: 0, expected: 0, reason: `a slice header is cut or damaged (${e.message})` };
      throw e;
    }
    if ((h.redundantPicCnt ?? 0) === 0) slices.push({ nal, h });
  }
  const first = slices[0];
  if (first === undefined) return { status: 'unknown', reason: 'no slice' };
  const pps = ppsById.get(first.h.ppsId) as Pps;
  const sps = spsById.get(pps.spsId) as Sps;
  const why = unsupported(first.h, sps, pps);
  if (why !== undefined) return { status: 'unknown', reason: `${why}: the slice data is not walked` };
  const expected = sps.picWidthInMbs * sps.picHeightInMapUnits;
  const covered = new Uint8Array(expected);
  let macroblocks = 0;
  for (const { nal, h } of slices) {
    const w = unsupported(h, sps, pps);
    if (w !== undefined) return { status: 'unknown', reason: `${w}: the slice data is not walked` };
    let walk: SliceWalk;
    try {
      walk = walkSlice(nal, h, sps);
    } catch (e) {
      if (e instanceof MediaError) return { status: 'incomplete', macroblocks, expected, reason: `the slice starting at macroblock ${h.firstMbInSlice} is cut or damaged (${e.message.replace(/ \(at byte \d+\)$/, '')})` };
      throw e;
    }
    for (let a = walk.first; a < walk.first + walk.count; a++) {
      if (covered[a] === 1) return { status: 'incomplete', macroblocks, expected, reason: `macroblock ${a} is coded twice` };
      covered[a] = 1;
    }
    macroblocks += walk.count;
  }
  if (macroblocks < expected) return { status: 'incomplete', macroblocks, expected, reason: `its slices cover ${macroblocks} of ${expected} macroblocks` };
  return { status: 'complete', macroblocks };
}
