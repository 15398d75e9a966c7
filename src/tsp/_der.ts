/**
 * A minimal DER walker: just enough to find the exact bytes a CMS signer signed (the signed attributes as they
 * were received, RFC 5652 §5.4), which the schema parser does not keep for a SET OF. Definite lengths only: a
 * time-stamp token is DER (RFC 3161 §2.4.2). Anything else throws a TspFormatError.
 */
export class TspFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TspFormatError';
  }
}

export interface Tlv {
  readonly tag: number;
  /** Offset of the tag byte in the input. */
  readonly start: number;
  /** Offset of the first content byte. */
  readonly contentStart: number;
  /** Offset just past the content. */
  readonly end: number;
}

/** The TLV at `offset` of `data` (single-byte tags only, as every tag CMS uses here is). */
export function readTlv(data: Uint8Array, offset: number, limit = data.length): Tlv {
  if (offset + 2 > limit) throw new TspFormatError(`DER: truncated at ${offset}`);
  const tag = data[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new TspFormatError(`DER: multi-byte tag at ${offset}`);
  let len = data[offset + 1] as number;
  let pos = offset + 2;
  if (len === 0x80) throw new TspFormatError(`DER: indefinite length at ${offset}`);
  if (len > 0x80) {
    const n = len & 0x7f;
    if (n > 4 || pos + n > limit) throw new TspFormatError(`DER: bad length at ${offset}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (data[pos + i] as number);
    pos += n;
  }
  if (pos + len > limit) throw new TspFormatError(`DER: content runs past its container at ${offset}`);
  return { tag, start: offset, contentStart: pos, end: pos + len };
}

/** The children of a constructed TLV. */
export function children(data: Uint8Array, tlv: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = tlv.contentStart; pos < tlv.end; ) {
    const c = readTlv(data, pos, tlv.end);
    out.push(c);
    pos = c.end;
  }
  return out;
}

/** DER length octets. */
export function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/**
 * The signed attributes of the first SignerInfo of a CMS ContentInfo(SignedData), re-tagged as the SET OF that was
 * signed (the [0] IMPLICIT tag replaced by SET, 0x31), byte for byte as received; undefined if there are none.
 */
export function signedAttributesAsSigned(contentInfo: Uint8Array): Buffer | undefined {
  const ci = readTlv(contentInfo, 0);
  const [, explicit] = children(contentInfo, ci);
  if (explicit === undefined || explicit.tag !== 0xa0) throw new TspFormatError('ContentInfo has no content');
  const sdTlv = children(contentInfo, explicit)[0];
  if (sdTlv === undefined || sdTlv.tag !== 0x30) throw new TspFormatError('SignedData is not a SEQUENCE');
  const parts = children(contentInfo, sdTlv);
  const signerInfos = parts[parts.length - 1];
  if (signerInfos === undefined || signerInfos.tag !== 0x31) throw new TspFormatError('SignedData has no signerInfos SET');
  const first = children(contentInfo, signerInfos)[0];
  if (first === undefined) throw new TspFormatError('no SignerInfo');
  const attrs = children(contentInfo, first).find((c) => c.tag === 0xa0);
  if (attrs === undefined) return undefined;
  const out = Buffer.from(contentInfo.subarray(attrs.start, attrs.end));
  out[0] = 0x31;
  return out;
}

/** The parts of a ContentInfo(SignedData) read as received: the certificates' DER and the signed attributes as signed. */
export interface SignedDataParts {
  readonly certificates: readonly Buffer[];
  readonly signedAttributes: Buffer | undefined;
}

export function signedDataParts(contentInfo: Uint8Array): SignedDataParts {
  const ci = readTlv(contentInfo, 0);
  if (ci.end !== contentInfo.length) throw new TspFormatError('trailing bytes after the token');
  const [, explicit] = children(contentInfo, ci);
  if (explicit === undefined || explicit.tag !== 0xa0) throw new TspFormatError('ContentInfo has no content');
  const sd = children(contentInfo, explicit)[0];
  if (sd === undefined || sd.tag !== 0x30) throw new TspFormatError('SignedData is not a SEQUENCE');
  const parts = children(contentInfo, sd);
  const certSet = parts.find((p) => p.tag === 0xa0);
  const certificates = certSet === undefined ? [] : children(contentInfo, certSet).filter((c) => c.tag === 0x30).map((c) => Buffer.from(contentInfo.subarray(c.start, c.end)));
  return { certificates, signedAttributes: signedAttributesAsSigned(contentInfo) };
}

/** The TimeStampToken (ContentInfo) inside a TimeStampResp, byte for byte; undefined when the reply carries none. */
export function tokenOfResponse(response: Uint8Array): Buffer | undefined {
  const resp = readTlv(response, 0);
  if (resp.tag !== 0x30 || resp.end !== response.length) throw new TspFormatError('not a TimeStampResp');
  const token = children(response, resp)[1];
  return token === undefined ? undefined : Buffer.from(response.subarray(token.start, token.end));
}
