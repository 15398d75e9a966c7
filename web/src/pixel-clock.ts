/**
 * Reads the pixel clock (src/camera/sources/pixel-clock.ts: the capture time the test-pattern camera draws into
 * each picture) from the frame a video element shows: the strip's rows are copied to a canvas, turned into luma
 * and decoded by the same reader the tests use. Glass-to-glass latency = this browser's clock − the capture time
 * (the cameras and this page on one machine, or on clocks kept in step).
 */
import { pixelClockCell, readPixelClock } from '../../src/camera/sources/pixel-clock.js';

export class PixelClockReader {
  private readonly canvas = document.createElement('canvas');
  private readonly ctx = this.canvas.getContext('2d', { willReadFrequently: true });

  /** The capture time drawn in the frame `video` shows now (ms since the epoch), or undefined. */
  read(video: HTMLVideoElement): number | undefined {
    const w = video.videoWidth;
    const s = pixelClockCell(w);
    if (s === 0 || this.ctx === null || video.videoHeight < s) return undefined;
    if (this.canvas.width !== w || this.canvas.height !== s) {
      this.canvas.width = w;
      this.canvas.height = s;
    }
    try {
      this.ctx.drawImage(video, 0, 0, w, s, 0, 0, w, s);
      const rgba = this.ctx.getImageData(0, 0, w, s).data;
      const gray = new Uint8Array(w * s);
      for (let i = 0, j = 0; i < gray.length; i++, j += 4) gray[i] = ((rgba[j] as number) * 299 + (rgba[j + 1] as number) * 587 + (rgba[j + 2] as number) * 114) / 1000;
      return readPixelClock(gray, w, s);
    } catch {
      return undefined; // a frame the browser does not let a page read
    }
  }
}
