/**
 * Key wraps: AES-256-GCM of a 32-byte node key under the key-encryption key of one of the node's children.
 *
 *   wrap      = target u32 ‖ recipient u32 ‖ nonce 12 ‖ ciphertext 32 ‖ tag 16          (68 bytes on the wire)
 *   AAD       = version u8 (1) ‖ msgType u8 (1 = bundle) ‖ groupId id ‖ epoch u64 ‖ target u32 ‖ recipient u32
 *   KEK       = K_i^wrap when the recipient is a leaf (a camera), KEK(node key) = HKDF-Expand(k, "gkd/v1 kek")
 *               when it is an interior node
 *
 * `target` is the node whose new key the wrap carries, `recipient` the child whose key opens it. The AAD binds
 * the version, the group, the epoch, the recipient node (and the target) and the message type, so a wrap cannot
 * be moved to another group, epoch, node or message without failing authentication. The nonce is random (12
 * bytes from the injected `Random`); a KEK wraps at most d keys per epoch, far below GCM's random-nonce limit.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { MSG, Writer, WIRE_VERSION } from './codec.js';
import { checkKey, KEY_BYTES } from './kdf.js';

export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
/** Ciphertext ‖ tag of a 32-byte key. */
export const SEALED_BYTES = KEY_BYTES + TAG_BYTES;
/** One wrap on the wire. */
export const WRAP_BYTES = 4 + 4 + NONCE_BYTES + SEALED_BYTES;

export interface Wrap {
  /** The node whose new key this wrap carries. */
  readonly target: number;
  /** The child of `target` whose key-encryption key opens it. */
  readonly recipient: number;
  readonly nonce: Uint8Array;
  /** AES-256-GCM ciphertext (32 bytes) ‖ tag (16 bytes). */
  readonly sealed: Uint8Array;
}

/** What a wrap's AAD binds. */
export interface WrapContext {
  readonly groupId: string;
  readonly epoch: number;
  readonly target: number;
  readonly recipient: number;
}

export function wrapAad(c: WrapContext): Uint8Array {
  return new Writer().u8(WIRE_VERSION).u8(MSG.bundle).id(c.groupId, 'groupId').u64(c.epoch).u32(c.target).u32(c.recipient).bytes();
}

/** Wraps `key` for `c.target` under `kek` (the recipient's key-encryption key). */
export function sealWrap(kek: Uint8Array, key: Uint8Array, nonce: Uint8Array, c: WrapContext): Wrap {
  checkKey(kek, 'KEK');
  checkKey(key, 'wrapped key');
  const cipher = createCipheriv('aes-256-gcm', kek, nonce);
  cipher.setAAD(wrapAad(c));
  const sealed = new Uint8Array(Buffer.concat([cipher.update(key), cipher.final(), cipher.getAuthTag()]));
  return { target: c.target, recipient: c.recipient, nonce: Uint8Array.from(nonce), sealed };
}

/**
 * Opens a wrap with `kek` in the context `c`: the 32-byte key, or null when authentication fails (wrong key,
 * wrong context, or tampered bytes — deliberately indistinguishable).
 */
export function openWrap(kek: Uint8Array, wrap: Wrap, c: WrapContext): Uint8Array | null {
  if (kek.length !== KEY_BYTES || wrap.nonce.length !== NONCE_BYTES || wrap.sealed.length !== SEALED_BYTES) return null;
  try {
    const d = createDecipheriv('aes-256-gcm', kek, wrap.nonce);
    d.setAAD(wrapAad(c));
    d.setAuthTag(wrap.sealed.subarray(KEY_BYTES));
    return new Uint8Array(Buffer.concat([d.update(wrap.sealed.subarray(0, KEY_BYTES)), d.final()]));
  } catch {
    return null;
  }
}
