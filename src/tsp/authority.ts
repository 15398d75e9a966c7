/**
 * keyframe's own time-stamping authority (RFC 3161, RFC 5816): answers a TimeStampReq with a TimeStampResp whose
 * token is a CMS SignedData over a TSTInfo, signed through a KeyStore (the TSA key never leaves its store).
 *
 * Token profile: TSTInfo v1 with the TSA's policy (or an accepted requested one), the request's imprint and nonce,
 * a random 127-bit serial number (unique without state), genTime in whole seconds rounded up — the hash existed no
 * later than it — with an accuracy of one second, ordering false, and the TSA's name; SignedData v3 with SHA-256,
 * signed attributes content-type, message-digest and ESS signing-certificate-v2 (SHA-256 of the TSA certificate,
 * with issuer and serial), the TSA's chain when the request asks for certificates. Refusals are PKIStatus rejection
 * with the RFC's failure bits: badAlg (digest not SHA-256/384/512 or wrong length), unacceptedPolicy,
 * unacceptedExtension, badDataFormat.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { PKIFailureInfo, PKIFailureInfoFlags, PKIFreeText, PKIStatus, PKIStatusInfo, TimeStampResp, TimeStampToken } from '@peculiar/asn1-tsp';
import { ErrorCodes, InputError, KeyframeError } from '../errors.js';
import type { KeyStore } from '../keystore/types.js';
import { asDecoded, checkPurpose } from '../pki/_checks.js';
import { TSA_POLICY } from '../pki/oids.js';
import type { X509Certificate } from '../pki/x509.js';
import { buildTimeStampToken } from './issue.js';
import type { DigestName } from './oids.js';
import { decodeTimeStampRequest, encodeTimeStampRequest, imprintAcceptable } from './request.js';

export interface AuthorityOptions {
  /** The key store holding the TSA key, and its label. */
  readonly store: KeyStore;
  readonly label: string;
  /** The TSA certificate, then its issuing CA(s): what a token carries when a request asks for certificates. */
  readonly chain: readonly X509Certificate[];
  /** The policy of the tokens (default keyframe's TSA policy). */
  readonly policy?: string;
  /** Further policies a request may ask for. */
  readonly acceptedPolicies?: readonly string[];
  /** The TSA's clock (default the system clock). */
  readonly clock?: () => Date;
}

export interface StampOptions {
  readonly hashAlgorithm?: DigestName;
  readonly nonce?: bigint;
  /** Include the TSA's chain in the token (default true). */
  readonly certReq?: boolean;
}

function rejection(failure: PKIFailureInfoFlags, text: string): Buffer {
  const status = new PKIStatusInfo({ status: PKIStatus.rejection, statusString: new PKIFreeText([text]), failInfo: new PKIFailureInfo(failure) });
  return Buffer.from(AsnConvert.serialize(new TimeStampResp({ status })));
}

export class TimeStampAuthority {
  private readonly policy: string;
  private readonly accepted: readonly string[];
  private readonly certificate: X509Certificate;

  private constructor(
    private readonly options: AuthorityOptions,
    private readonly rsa: boolean,
  ) {
    const cert = options.chain[0];
    if (cert === undefined) throw new InputError('a TSA needs its certificate');
    this.certificate = cert;
    this.policy = options.policy ?? TSA_POLICY;
    this.accepted = [this.policy, ...(options.acceptedPolicies ?? [])];
  }

  /**
   * A TSA over a key in `store`: refused (KF_ERR_TIMESTAMP) unless the certificate certifies that key and carries the
   * extended key usage id-kp-timeStamping, only and critical — as OpenSSL refuses to sign with anything else.
   */
  static async create(options: AuthorityOptions): Promise<TimeStampAuthority> {
    const key = await options.store.getPublicKey(options.label);
    const tsa = new TimeStampAuthority(options, key.asymmetricKeyType === 'rsa');
    const purpose = checkPurpose(tsa.certificate, 'timestamping');
    if (purpose !== undefined) throw new KeyframeError(ErrorCodes.TIMESTAMP, `invalid signer certificate purpose: ${purpose.reason}`);
    const spki = key.export({ format: 'der', type: 'spki' });
    if (!Buffer.from(tsa.certificate.publicKey.rawData).equals(spki)) throw new KeyframeError(ErrorCodes.CERT_MISMATCH, 'the TSA certificate does not certify the TSA key');
    return tsa;
  }

  /** Answers a DER TimeStampReq with a DER TimeStampResp (granted, or a rejection saying why). */
  async respond(request: Uint8Array): Promise<Buffer> {
    let req;
    try {
      req = decodeTimeStampRequest(request);
    } catch {
      return rejection(PKIFailureInfoFlags.badDataFormat, 'not an RFC 3161 time-stamp request');
    }
    if (!imprintAcceptable(req)) return rejection(PKIFailureInfoFlags.badAlg, 'unsupported message imprint: SHA-256, SHA-384 or SHA-512 of the right length');
    if (req.hasExtensions) return rejection(PKIFailureInfoFlags.unacceptedExtension, 'request extensions are not supported');
    let policy = this.policy;
    if (req.policy !== undefined) {
      const match = this.accepted.find((p) => p === req.policy || asDecoded(p) === req.policy);
      if (match === undefined) return rejection(PKIFailureInfoFlags.unacceptedPolicy, `policy ${req.policy} is not supported`);
      policy = match;
    }
    const token = await this.issue(req.hashAlgorithm, req.hashedMessage, policy, req.nonce, req.certReq);
    const resp = new TimeStampResp({ status: new PKIStatusInfo({ status: PKIStatus.granted }), timeStampToken: AsnConvert.parse(token, TimeStampToken) });
    return Buffer.from(AsnConvert.serialize(resp));
  }

  /** A token over `hash` (a DER TimeStampToken, i.e. a ContentInfo): the local way, without a request on the wire. */
  async timestamp(hash: Uint8Array, options: StampOptions = {}): Promise<Buffer> {
    // through the same checks as a request from the network
    const req = decodeTimeStampRequest(
      encodeTimeStampRequest({ hashAlgorithm: options.hashAlgorithm ?? 'sha256', hashedMessage: hash, certReq: options.certReq ?? true, ...(options.nonce !== undefined ? { nonce: options.nonce } : {}) }),
    );
    return this.issue(req.hashAlgorithm, req.hashedMessage, this.policy, req.nonce, req.certReq);
  }

  private async issue(hashAlgorithm: DigestName, hash: Uint8Array, policy: string, nonce: bigint | undefined, certReq: boolean): Promise<Buffer> {
    const now = (this.options.clock ?? (() => new Date()))();
    return buildTimeStampToken({
      certificate: this.certificate,
      chain: certReq ? this.options.chain : [],
      rsa: this.rsa,
      sign: (data) => this.options.store.sign(this.options.label, data, { dsaEncoding: 'der' }),
      hashAlgorithm,
      hash,
      policy,
      ...(nonce !== undefined ? { nonce } : {}),
      // whole seconds, rounded up: the hash existed no later than genTime (accuracy 1 s)
      genTime: new Date(Math.ceil(now.getTime() / 1000) * 1000),
      accuracySeconds: 1,
    });
  }
}
