/**
 * Fragment boundaries of a CMAF file: the init segment (everything before the first `moof`) and each fragment
 * (a `moof` with the `mdat` that follows it), as views — what fragment records hash.
 */
import { MediaError } from '../errors.js';
import { iterateBoxes } from '../media/mp4/index.js';

export interface CmafParts {
  readonly init: Uint8Array;
  readonly fragments: readonly Uint8Array[];
}

export function splitCmaf(file: Uint8Array): CmafParts {
  const fragments: Uint8Array[] = [];
  let initEnd: number | undefined;
  let moofStart: number | undefined;
  for (const box of iterateBoxes(file, 0, file.length)) {
    if (box.type === 'moof') {
      if (moofStart !== undefined) throw new MediaError('a moof without its mdat', box.offset);
      initEnd ??= box.offset;
      moofStart = box.offset;
    } else if (box.type === 'mdat') {
      if (moofStart === undefined) throw new MediaError('an mdat without a moof', box.offset);
      fragments.push(file.subarray(moofStart, box.offset + box.size));
      moofStart = undefined;
    } else if (moofStart !== undefined) {
      throw new MediaError(`unexpected ${box.type} between moof and mdat`, box.offset);
    }
  }
  if (moofStart !== undefined) throw new MediaError('the last moof has no mdat');
  return { init: file.subarray(0, initEnd ?? file.length), fragments };
}
