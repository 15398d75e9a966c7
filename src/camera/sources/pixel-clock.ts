/**
 * A machine-readable wall clock drawn in a picture's pixels, for end-to-end latency measurements: the test-pattern
 * source draws the capture time of each picture into it, and whoever decodes the picture (a test through ffmpeg, a
 * browser through a canvas) reads it back and compares it with its own clock.
 *
 * Layout (luma only; the same at every picture size):
 *
 *   - The strip is one row of PIXEL_CLOCK_CELLS = 64 square cells in the top-left corner of the picture.
 *     Cell size S = floor(width / 64) pixels (10 px at 640 wide, 20 px at 1280); cell c covers
 *     x ∈ [c·S, (c+1)·S), y ∈ [0, S). A picture narrower than 256 pixels (S < 4) carries no clock.
 *   - Each cell is white (bit 1, luma 235) or black (bit 0, luma 16).
 *   - Cells 0–3: start marker 1 0 1 0. Cells 60–63: end marker 0 1 0 1. The markers give the reader its black and
 *     white levels (threshold halfway) and a check that it is looking at a clock at all.
 *   - Cells 4–51: 48 data bits, most significant first: the capture time in milliseconds since the Unix epoch
 *     (2^48 ms is beyond the year 10 000).
 *   - Cells 52–59: 8 check bits, most significant first: the sum of the 6 data bytes, modulo 256.
 *
 * To read: take S = floor(width / 64), average the luma over the middle half of each cell (in both directions),
 * threshold at the middle of the markers' mean white and mean black, refuse if the markers differ from 1010 / 0101,
 * if their contrast is below 64, if any cell lies within 1/4 of the contrast of the threshold, or if the check
 * byte differs. Otherwise the time is the 48-bit number.
 *
 * The test pattern draws it with ffmpeg filters (pixelClockFilter): the clock's 64 × 2 pixel source is computed by
 * `geq` from the frame's time stamp and scaled up with nearest-neighbour sampling, so only 128 pixels per frame
 * are evaluated by an expression.
 */

export const PIXEL_CLOCK_CELLS = 64;
const DATA_BITS = 48;
const FIRST_DATA = 4;
const FIRST_CHECK = FIRST_DATA + DATA_BITS;
const START = [1, 0, 1, 0] as const;
const END = [0, 1, 0, 1] as const;
export const PIXEL_CLOCK_WHITE = 235;
export const PIXEL_CLOCK_BLACK = 16;
export const PIXEL_CLOCK_MAX = 2 ** DATA_BITS - 1;

/** Cell size in pixels for a picture `width` wide, or 0 when the picture is too narrow to carry a clock. */
export function pixelClockCell(width: number): number {
  const s = Math.floor(width / PIXEL_CLOCK_CELLS);
  return s >= 4 ? s : 0;
}

function _checkByte(ms: number): number {
  let sum = 0;
  let v = ms;
  for (let k = 0; k < 6; k++) {
    sum += v % 256;
    v = Math.floor(v / 256);
  }
  return sum % 256;
}

/** The 64 bits (0/1) of the strip for `ms`. */
export function pixelClockBits(ms: number): number[] {
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > PIXEL_CLOCK_MAX) throw new RangeError(`pixel clock time ${ms} is out of range`);
  const bits: number[] = [...START];
  for (let i = DATA_BITS - 1; i >= 0; i--) bits.push(Math.floor(ms / 2 ** i) % 2);
  const check = _checkByte(ms);
  for (let i = 7; i >= 0; i--) bits.push((check >> i) & 1);
  bits.push(...END);
  return bits;
}

/** Draws the strip for `ms` into a luma (gray) picture, in place: the reference drawing, for tests. */
export function drawPixelClock(gray: Uint8Array, width: number, height: number, ms: number): void {
  const s = pixelClockCell(width);
  if (s === 0 || height < s) throw new RangeError(`a ${width}×${height} picture is too small for a pixel clock`);
  const bits = pixelClockBits(ms);
  for (let y = 0; y < s; y++) {
    for (let c = 0; c < PIXEL_CLOCK_CELLS; c++) gray.fill(bits[c] === 1 ? PIXEL_CLOCK_WHITE : PIXEL_CLOCK_BLACK, y * width + c * s, y * width + (c + 1) * s);
  }
}

/**
 * Reads the time drawn by drawPixelClock (or the test pattern) from a luma picture (`width × height` bytes, row by
 * row, no padding): ms since the epoch, or undefined when no clock can be read with confidence.
 */
export function readPixelClock(gray: Uint8Array, width: number, height: number): number | undefined {
  const s = pixelClockCell(width);
  if (s === 0 || height < s || gray.length < width * height) return undefined;
  const m0 = Math.floor(s / 4);
  const m1 = Math.max(m0 + 1, Math.ceil((3 * s) / 4));
  const levels: number[] = [];
  for (let c = 0; c < PIXEL_CLOCK_CELLS; c++) {
    let sum = 0;
    let n = 0;
    for (let y = m0; y < m1; y++) {
      const row = y * width + c * s;
      for (let x = m0; x < m1; x++) {
        sum += gray[row + x] as number;
        n++;
      }
    }
    levels.push(sum / n);
  }
  const markers = [0, 1, 2, 3, 60, 61, 62, 63];
  const expected = [...START, ...END];
  let white = 0;
  let black = 0;
  markers.forEach((c, i) => {
    if (expected[i] === 1) white += levels[c] as number;
    else black += levels[c] as number;
  });
  white /= 4;
  black /= 4;
  const contrast = white - black;
  if (contrast < 64) return undefined;
  const threshold = (white + black) / 2;
  const bits: number[] = [];
  for (const level of levels) {
    if (Math.abs(level - threshold) < contrast / 4) return undefined;
    bits.push(level > threshold ? 1 : 0);
  }
  for (let i = 0; i < markers.length; i++) if (bits[markers[i] as number] !== expected[i]) return undefined;
  let ms = 0;
  for (let i = 0; i < DATA_BITS; i++) ms = ms * 2 + (bits[FIRST_DATA + i] as number);
  let check = 0;
  for (let i = 0; i < 8; i++) check = (check << 1) | (bits[FIRST_CHECK + i] as number);
  return check === _checkByte(ms) ? ms : undefined;
}

/**
 * The geq luma expression of the 64 × 2 clock source: pixel X is cell X, showing `originMs + round(T·1000)` where T
 * is the frame's time stamp in seconds.
 */
function _geqExpression(originMs: number): string {
  // st(0): cell, st(1): the time in ms, st(2): bit
  const v = `${originMs}+floor(T*1000+0.5)`;
  const byte = (k: number): string => `mod(floor(ld(1)/${2 ** (8 * k)}),256)`;
  const check = `mod(${[0, 1, 2, 3, 4, 5].map(byte).join('+')},256)`;
  const bit = [
    `if(lt(ld(0),4),1-mod(ld(0),2),`,
    `if(lt(ld(0),${FIRST_CHECK}),mod(floor(ld(1)/pow(2,${FIRST_CHECK - 1}-ld(0))),2),`,
    `if(lt(ld(0),60),mod(floor(${check}/pow(2,59-ld(0))),2),`,
    `mod(ld(0),2))))`,
  ].join('');
  return `st(0,floor(X));st(1,${v});st(2,${bit});${PIXEL_CLOCK_BLACK}+ld(2)*${PIXEL_CLOCK_WHITE - PIXEL_CLOCK_BLACK}`;
}

/**
 * An ffmpeg filter graph fragment (between `[in]` and `[out]` labels) that draws the clock onto a yuv420p video
 * whose time stamps are ms since `originMs` … i.e. a frame with time stamp T seconds shows originMs + round(T·1000).
 */
export function pixelClockFilter(width: number, inLabel: string, outLabel: string, originMs: number): string {
  const s = pixelClockCell(width);
  if (s === 0) throw new RangeError(`a picture ${width} wide is too narrow for a pixel clock`);
  const expr = _geqExpression(originMs);
  return [
    `[${inLabel}]split[kfc_main][kfc_src]`,
    `[kfc_src]crop=${PIXEL_CLOCK_CELLS}:2:0:0,geq=lum='${expr}':cb=128:cr=128,scale=${PIXEL_CLOCK_CELLS * s}:${s % 2 === 0 ? s : s + 1}:flags=neighbor[kfc_strip]`,
    `[kfc_main][kfc_strip]overlay=0:0:eof_action=pass[${outLabel}]`,
  ].join(';');
}
