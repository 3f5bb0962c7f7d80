import { createCipheriv, createDecipheriv } from 'node:crypto';
import { CryptoError } from './errors';
import { fillRandom } from './random';

const ALGORITHM = 'aes-256-gcm';
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const KEY_BYTES = 32;
const UINT32_MAX = 0xffffffff;
const UINT16_MAX = 0xffff;

export const requireKey = (key: Buffer, what: string) => {
  if (key.length !== KEY_BYTES) throw new CryptoError('INVALID_KEY', `${what} must be ${KEY_BYTES} bytes`);
};

export const requireUint32 = (value: number, what: string) => {
  if (!Number.isInteger(value) || value < 0 || value > UINT32_MAX) {
    throw new CryptoError('INVALID_KEY', `${what} must be a uint32`);
  }
};

/**
 * `prefix` bytes left for the caller's header | nonce (12) | ciphertext | tag (16), in one buffer. The
 * nonce is fresh CSPRNG output for every call.
 */
export const seal = (key: Buffer, aad: Buffer, plaintext: Buffer | string, prefix = 0): Buffer => {
  const plainBytes = typeof plaintext === 'string' ? Buffer.byteLength(plaintext, 'utf8') : plaintext.length;
  const out = Buffer.allocUnsafe(prefix + NONCE_BYTES + plainBytes + TAG_BYTES);
  fillRandom(out, prefix, NONCE_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, out.subarray(prefix, prefix + NONCE_BYTES), {
    authTagLength: TAG_BYTES,
  });
  cipher.setAAD(aad);
  const body = typeof plaintext === 'string' ? cipher.update(plaintext, 'utf8') : cipher.update(plaintext);
  const final = cipher.final();
  // GCM is a stream mode: the ciphertext is exactly as long as the plaintext.
  if (body.length + final.length !== plainBytes) throw new Error('AES-GCM returned an unexpected length');
  body.copy(out, prefix + NONCE_BYTES);
  final.copy(out, prefix + NONCE_BYTES + body.length);
  cipher.getAuthTag().copy(out, prefix + NONCE_BYTES + plainBytes);
  return out;
};

/** Undefined when the tag does not verify: wrong key, wrong AAD or tampered bytes. */
export const open = (key: Buffer, aad: Buffer, sealed: Buffer): Buffer | undefined => {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) return undefined;
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const decipher = createDecipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES }).setAAD(aad);
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
  } catch {
    return undefined;
  }
};

/*
 * AAD encoding: fixed-width integers (big-endian) and length-prefixed UTF-8 strings, each AAD starting
 * with a purpose byte so that a data-key AAD can never equal a field AAD. Length prefixes make the
 * encoding injective: no two different (subject, field, version) tuples give the same bytes. The
 * layouts are documented beside their builders (key-wrap.ts, field-cipher.ts, backup-frames.ts).
 */
export const AadPurpose = { wrap: 0x4b, field: 0x46, backupKey: 0x42, backupFrame: 0x62 } as const;

/** The UTF-8 length of `value`, refused when it does not fit a uint16 length prefix. */
export const stringBytes = (value: string, what: string): number => {
  const length = Buffer.byteLength(value, 'utf8');
  if (length > UINT16_MAX) throw new CryptoError('INVALID_KEY', `${what} is longer than ${UINT16_MAX} bytes`);
  return length;
};

/** Writes len (uint16 BE) | UTF-8 bytes at `at`; returns the offset after it. */
export const writeString = (aad: Buffer, at: number, value: string, length: number): number => {
  aad.writeUInt16BE(length, at);
  aad.write(value, at + 2, length, 'utf8');
  return at + 2 + length;
};
