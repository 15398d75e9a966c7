/**
 * Splits a byte stream into lines of UTF-8 text, bounded: a line longer than `maxBytes` is not kept (only its
 * length), so that one line without a newline cannot exhaust memory. Pure: bytes in, lines out.
 */

export type Line = { readonly lineNo: number; readonly text: string } | { readonly lineNo: number; readonly tooLong: number };

export class LineSplitter {
  private parts: Uint8Array[] = [];
  private partBytes = 0;
  /** Bytes of the current line so far, kept or not. */
  private length = 0;
  private lineNo = 1;

  constructor(private readonly maxBytes: number) {}

  /** The lines that `chunk` completes. */
  push(chunk: Uint8Array): Line[] {
    const out: Line[] = [];
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, from);
      const end = nl < 0 ? chunk.length : nl;
      this.take(chunk.subarray(from, end));
      if (nl < 0) return out;
      out.push(this.line());
      from = nl + 1;
    }
  }

  /** The last line, when the stream does not end with a newline. */
  flush(): Line[] {
    return this.length > 0 ? [this.line()] : [];
  }

  private take(bytes: Uint8Array): void {
    this.length += bytes.length;
    if (this.length > this.maxBytes) {
      this.parts = [];
      this.partBytes = 0;
    } else if (bytes.length > 0) {
      this.parts.push(Uint8Array.from(bytes));
      this.partBytes += bytes.length;
    }
  }

  private line(): Line {
    const lineNo = this.lineNo++;
    const length = this.length;
    const text = length > this.maxBytes ? undefined : Buffer.concat(this.parts, this.partBytes).toString('utf8');
    this.parts = [];
    this.partBytes = 0;
    this.length = 0;
    return text === undefined ? { lineNo, tooLong: length } : { lineNo, text };
  }
}
