/**
 * The camera's counter store: DEV/counter.json holds the first value not yet reserved; a block is reserved under the
 * device directory lock and written atomically before any of its values is used.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, InputError, KeyframeError, errnoCode } from '../errors.js';
import { withDirLock, writeFileAtomic } from '../util/fs.js';
import { COUNTER_MAX, UnitCounter, type CounterStore } from './counter.js';

export const COUNTER_FILE = 'counter.json';

interface CounterFile {
  readonly v: 1;
  /** First value not yet reserved, decimal. */
  readonly next: string;
}

async function readNext(path: string): Promise<bigint> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return 0n;
    throw e;
  }
  let parsed: CounterFile;
  try {
    parsed = JSON.parse(text) as CounterFile;
  } catch {
    throw new InputError(`${path} is not valid JSON`);
  }
  if (parsed.v !== 1 || typeof parsed.next !== 'string' || !/^\d{1,20}$/.test(parsed.next) || BigInt(parsed.next) > COUNTER_MAX) {
    throw new InputError(`${path} is not a keyframe counter file`);
  }
  return BigInt(parsed.next);
}

/** DEV/counter.json as a CounterStore. */
export class FileCounterStore implements CounterStore {
  constructor(private readonly dir: string) {}

  async reserveBlock(size: bigint): Promise<bigint> {
    const path = join(this.dir, COUNTER_FILE);
    return withDirLock(this.dir, async () => {
      const base = await readNext(path);
      const limit = base + size;
      if (limit > COUNTER_MAX) throw new KeyframeError(ErrorCodes.INTERNAL, 'unit counter exhausted');
      await writeFileAtomic(path, `${JSON.stringify({ v: 1, next: limit.toString() })}\n`);
      return base;
    });
  }
}

/** The unit counter of device directory DEV. */
export function openUnitCounter(dir: string, options: { block?: number } = {}): UnitCounter {
  return new UnitCounter(new FileCounterStore(dir), options);
}
