/**
 * Getting a verified token over a hash, from keyframe's own TSA (an identity directory made by `keyframe ca
 * tsa-cert`, its key in a key store) or from an RFC 3161 TSA over HTTP. Every token is verified — signature,
 * imprint, nonce, TSA certificate (critical timeStamping EKU) and its chain to a trusted root — before it is given
 * back to be stored.
 */
import { ErrorCodes, KeyframeError } from '../errors.js';
import { openOperatorIdentity, type OpenIdentityOptions } from '../pki/operator-identity.js';
import type { X509Certificate, X509Crl } from '../pki/x509.js';
import { TimeStampAuthority } from './authority.js';
import { requestTimeStamp } from './client.js';
import { newNonce } from './request.js';
import { verifyTimeStampToken, type TimeStampInfo } from './token.js';

export interface Stamper {
  /** Who issues the tokens, for messages. */
  readonly description: string;
  /** A verified token (DER ContentInfo) over the SHA-256 `hash`, and what it says. */
  stamp(hash: Uint8Array): Promise<{ token: Buffer; info: TimeStampInfo }>;
  close(): Promise<void>;
}

export interface StamperTrust {
  /** Trust anchors for the TSA (default, for a local TSA: the operator CA at the end of its chain.pem). */
  readonly roots?: readonly X509Certificate[];
  readonly crls?: readonly X509Crl[];
}

async function verified(token: Buffer, hash: Uint8Array, nonce: bigint, roots: readonly X509Certificate[], crls: readonly X509Crl[] | undefined, who: string): Promise<{ token: Buffer; info: TimeStampInfo }> {
  const r = await verifyTimeStampToken(token, { hash, nonce, roots, ...(crls !== undefined ? { crls } : {}) });
  if (!r.valid) throw new KeyframeError(ErrorCodes.TIMESTAMP, `the token from ${who} does not verify: ${r.reason}`);
  return { token, info: r.info };
}

/** keyframe's own TSA, from its identity directory. */
export async function localStamper(dir: string, trust: StamperTrust & Pick<OpenIdentityOptions, 'keystore'> = {}): Promise<Stamper> {
  const identity = await openOperatorIdentity(dir, 'tsa', { ...(trust.keystore !== undefined ? { keystore: trust.keystore } : {}), ...(trust.roots !== undefined ? { roots: trust.roots } : {}), ...(trust.crls !== undefined ? { crls: trust.crls } : {}) });
  try {
    const tsa = await TimeStampAuthority.create({ store: identity.store, label: identity.config.keyLabel, chain: identity.chain });
    const anchor = identity.chain[identity.chain.length - 1] as X509Certificate;
    const roots = trust.roots ?? [anchor];
    const who = `TSA ${identity.config.name}`;
    return {
      description: who,
      stamp: async (hash) => {
        const nonce = newNonce();
        return verified(await tsa.timestamp(hash, { nonce }), hash, nonce, roots, trust.crls, who);
      },
      close: () => identity.close(),
    };
  } catch (e) {
    await identity.close();
    throw e;
  }
}

/** An RFC 3161 TSA over HTTP; its tokens must chain to `roots`. */
export function httpStamper(url: string, trust: StamperTrust & { readonly roots: readonly X509Certificate[] }): Stamper {
  const who = `TSA ${url}`;
  return {
    description: who,
    stamp: async (hash) => {
      const { token, nonce } = await requestTimeStamp(url, hash);
      return verified(token, hash, nonce, trust.roots, trust.crls, who);
    },
    close: async () => undefined,
  };
}
