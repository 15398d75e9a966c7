/**
 * GOP assembly: access units grouped from one IDR picture to the next. A GOP is the unit of key rotation, CMAF
 * fragments and signature chains, and the only place where decoding can start without earlier data.
 */
import type { AccessUnit } from './access-unit.js';

export interface Gop {
  readonly accessUnits: AccessUnit[];
  /** The access units before the first IDR picture of a stream: they cannot be decoded on their own. */
  readonly open: boolean;
}

/** Push access units in decoding order; a GOP comes back when the next IDR access unit arrives, the last one on `flush`. */
export class GopAssembler {
  private current: AccessUnit[] = [];

  push(au: AccessUnit): Gop[] {
    const out: Gop[] = [];
    if (au.isIdr) this.emit(out);
    this.current.push(au);
    return out;
  }

  flush(): Gop[] {
    const out: Gop[] = [];
    this.emit(out);
    return out;
  }

  private emit(out: Gop[]): void {
    const first = this.current[0];
    if (first !== undefined) out.push({ accessUnits: this.current, open: !first.isIdr });
    this.current = [];
  }
}
