import { createHash, createPublicKey, sign as ed25519Sign, verify as ed25519Verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../../domain/canonical-json';
import type { Keyring } from '../../runtime/keyring';

export interface Signature {
  keyId: string;
  algorithm: 'Ed25519';
  /** base64 */
  signature: string;
}

/** Ed25519 over the canonical JSON of `value`. */
export const sign = (keyring: Keyring, value: unknown): Signature => ({
  keyId: keyring.signing.keyId,
  algorithm: 'Ed25519',
  signature: ed25519Sign(null, Buffer.from(canonicalJson(value), 'utf8'), keyring.signing.privateKey).toString(
    'base64',
  ),
});

/** True only when `signature` (base64, or a Signature) is valid for `value` under `publicKey` (KeyObject or PEM). */
export const verifySignature = (
  publicKey: KeyObject | string,
  value: unknown,
  signature: string | Pick<Signature, 'signature'>,
): boolean => {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  const encoded = typeof signature === 'string' ? signature : signature.signature;
  try {
    return ed25519Verify(null, Buffer.from(canonicalJson(value), 'utf8'), key, Buffer.from(encoded, 'base64'));
  } catch {
    return false;
  }
};

export const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
