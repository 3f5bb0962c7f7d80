import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPublicKey,
  randomFillSync,
  sign as ed25519Sign,
  verify as ed25519Verify,
  type KeyObject,
} from 'node:crypto';
import { canonicalJson } from '../domain/canonical-json';
import type { Keyring } from '../runtime/keyring';

export type CryptoErrorCode =
  | 'INVALID_KEY'
  | 'UNKNOWN_KEK_VERSION'
  | 'UNWRAP_FAILED'
  | 'MALFORMED_CIPHERTEXT'
  | 'UNSUPPORTED_FORMAT'
  | 'KEY_VERSION_MISMATCH'
  | 'DECRYPT_FAILED';

/** A crypto failure with a stable code. Messages never carry plaintext or key bytes. */
export class CryptoError extends Error {
  constructor(
    readonly code: CryptoErrorCode,
    message: string,
  ) {
    super(message);
    // The name is the Temporal failure type, so workflows can list it in nonRetryableErrorTypes.
    this.name = 'CryptoError';
  }
}

const ALGORITHM = 'aes-256-gcm';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const FIELD_FORMAT = 0x01;
const FIELD_HEADER_BYTES = 1 + 4;
const UINT32_MAX = 0xffffffff;
const UINT16_MAX = 0xffff;

const requireKey = (key: Buffer, what: string) => {
  if (key.length !== KEY_BYTES) throw new CryptoError('INVALID_KEY', `${what} must be ${KEY_BYTES} bytes`);
};

const requireUint32 = (value: number, what: string) => {
  if (!Number.isInteger(value) || value < 0 || value > UINT32_MAX) {
    throw new CryptoError('INVALID_KEY', `${what} must be a uint32`);
  }
};

/*
 * Nonces and data keys come from a buffer of CSPRNG output (randomFillSync, 64 KiB at a time) instead
 * of one randomBytes call each: a call costs about as much as the AES-GCM encryption it feeds. Every
 * byte is handed out once: the offset only moves forward, taken bytes are copied out, and the buffer is
 * refilled from the CSPRNG (overwriting only bytes already taken) when too few remain. The buffer is
 * per thread (module state is not shared between worker threads).
 */
const RANDOM_POOL_BYTES = 64 * 1024;
const randomPool = Buffer.allocUnsafeSlow(RANDOM_POOL_BYTES);
let randomOffset = RANDOM_POOL_BYTES;

/** Copies `length` fresh CSPRNG bytes into `target` at `at`. */
const fillRandom = (target: Buffer, at: number, length: number): void => {
  if (length > RANDOM_POOL_BYTES) {
    randomFillSync(target, at, length);
    return;
  }
  if (randomOffset + length > RANDOM_POOL_BYTES) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  randomPool.copy(target, at, randomOffset, randomOffset + length);
  // Taken bytes are wiped so that no copy of a key or nonce lingers in the buffer.
  randomPool.fill(0, randomOffset, randomOffset + length);
  randomOffset += length;
};

/**
 * `prefix` bytes left for the caller's header | nonce (12) | ciphertext | tag (16), in one buffer. The
 * nonce is fresh CSPRNG output for every call.
 */
const seal = (key: Buffer, aad: Buffer, plaintext: Buffer | string, prefix = 0): Buffer => {
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
const open = (key: Buffer, aad: Buffer, sealed: Buffer): Buffer | undefined => {
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
 * encoding injective: no two different (subject, field, version) tuples give the same bytes.
 *
 * Data-key wrap AAD (sealed under a KEK):
 *   0x4b 'K' | keyVersion (uint32 BE) | kekVersion (uint32 BE) | len(subjectId) (uint16 BE) | subjectId (UTF-8)
 *
 * Field AAD (sealed under the subject's data key):
 *   0x46 'F' | format (uint8, 0x01) | keyVersion (uint32 BE) | len(subjectId) (uint16 BE) | subjectId (UTF-8)
 *          | len(field) (uint16 BE) | field (UTF-8)
 */
const WRAP_PURPOSE = 0x4b;
const FIELD_PURPOSE = 0x46;

const stringBytes = (value: string, what: string): number => {
  const length = Buffer.byteLength(value, 'utf8');
  if (length > UINT16_MAX) throw new CryptoError('INVALID_KEY', `${what} is longer than ${UINT16_MAX} bytes`);
  return length;
};

/** Writes len (uint16 BE) | UTF-8 bytes at `at`; returns the offset after it. */
const writeString = (aad: Buffer, at: number, value: string, length: number): number => {
  aad.writeUInt16BE(length, at);
  aad.write(value, at + 2, length, 'utf8');
  return at + 2 + length;
};

export const newDataKey = (): Buffer => {
  const dek = Buffer.allocUnsafeSlow(KEY_BYTES);
  fillRandom(dek, 0, KEY_BYTES);
  return dek;
};

export interface DataKeyRef {
  subjectId: string;
  keyVersion: number;
}

const wrapAad = (ref: DataKeyRef, kekVersion: number): Buffer => {
  requireUint32(ref.keyVersion, 'key version');
  requireUint32(kekVersion, 'KEK version');
  const subjectBytes = stringBytes(ref.subjectId, 'subject ID');
  const aad = Buffer.allocUnsafe(1 + 4 + 4 + 2 + subjectBytes);
  aad.writeUInt8(WRAP_PURPOSE, 0);
  aad.writeUInt32BE(ref.keyVersion, 1);
  aad.writeUInt32BE(kekVersion, 5);
  writeString(aad, 9, ref.subjectId, subjectBytes);
  return aad;
};

/** Wraps a subject's data key under the current KEK; the AAD pins it to subject, key version and KEK version. */
export const wrapDataKey = (
  keyring: Keyring,
  ref: DataKeyRef,
  dek: Buffer,
): { wrappedKey: Buffer; kekVersion: number } => {
  requireKey(dek, 'data key');
  const kekVersion = keyring.currentKekVersion;
  const kek = keyring.keks.get(kekVersion);
  if (!kek) throw new CryptoError('UNKNOWN_KEK_VERSION', `current KEK version ${kekVersion} is not in the keyring`);
  return { wrappedKey: seal(kek, wrapAad(ref, kekVersion), dek), kekVersion };
};

export const unwrapDataKey = (
  keyring: Keyring,
  wrapped: DataKeyRef & { kekVersion: number; wrappedKey: Buffer },
): Buffer => {
  const kek = keyring.keks.get(wrapped.kekVersion);
  if (!kek) {
    throw new CryptoError('UNKNOWN_KEK_VERSION', `KEK version ${wrapped.kekVersion} is not in the keyring`);
  }
  const dek = open(kek, wrapAad(wrapped, wrapped.kekVersion), wrapped.wrappedKey);
  if (!dek || dek.length !== KEY_BYTES) {
    throw new CryptoError(
      'UNWRAP_FAILED',
      `data key ${wrapped.keyVersion} of subject ${wrapped.subjectId} failed to unwrap (wrong KEK or altered)`,
    );
  }
  return dek;
};

export interface FieldRef {
  subjectId: string;
  field: string;
  /** The version of the data key in hand: written into the header on encrypt, required to match on decrypt. */
  keyVersion: number;
}

const fieldAad = (ref: FieldRef): Buffer => {
  requireUint32(ref.keyVersion, 'key version');
  const subjectBytes = stringBytes(ref.subjectId, 'subject ID');
  const fieldBytes = stringBytes(ref.field, 'field name');
  const aad = Buffer.allocUnsafe(1 + 1 + 4 + 2 + subjectBytes + 2 + fieldBytes);
  aad.writeUInt8(FIELD_PURPOSE, 0);
  aad.writeUInt8(FIELD_FORMAT, 1);
  aad.writeUInt32BE(ref.keyVersion, 2);
  writeString(aad, writeString(aad, 6, ref.subjectId, subjectBytes), ref.field, fieldBytes);
  return aad;
};

/** format (0x01) | keyVersion (uint32 BE) | nonce (12) | ciphertext | tag (16); AAD binds subject, field, version. */
export const encryptField = (dek: Buffer, ref: FieldRef, plaintext: string): Buffer => {
  requireKey(dek, 'data key');
  requireUint32(ref.keyVersion, 'key version');
  const sealed = seal(dek, fieldAad(ref), plaintext, FIELD_HEADER_BYTES);
  sealed.writeUInt8(FIELD_FORMAT, 0);
  sealed.writeUInt32BE(ref.keyVersion, 1);
  return sealed;
};

/** The data-key version a field value was encrypted under, read from its header (to pick the key). */
export const fieldKeyVersion = (ciphertext: Buffer): number => {
  if (ciphertext.length < FIELD_HEADER_BYTES + NONCE_BYTES + TAG_BYTES) {
    throw new CryptoError('MALFORMED_CIPHERTEXT', 'field value is too short to be a ciphertext');
  }
  const format = ciphertext.readUInt8(0);
  if (format !== FIELD_FORMAT) throw new CryptoError('UNSUPPORTED_FORMAT', `unsupported field format ${format}`);
  return ciphertext.readUInt32BE(1);
};

/**
 * Decrypts with the data key of version `ref.keyVersion`. A header naming another version is refused
 * before decryption; a value moved to another subject or field, or altered, fails authentication.
 */
export const decryptField = (dek: Buffer, ref: FieldRef, ciphertext: Buffer): string => {
  requireKey(dek, 'data key');
  const version = fieldKeyVersion(ciphertext);
  if (version !== ref.keyVersion) {
    throw new CryptoError(
      'KEY_VERSION_MISMATCH',
      `field ${ref.field} of subject ${ref.subjectId} was encrypted under key version ${version}, not ${ref.keyVersion}`,
    );
  }
  const plaintext = open(dek, fieldAad(ref), ciphertext.subarray(FIELD_HEADER_BYTES));
  if (!plaintext) {
    throw new CryptoError(
      'DECRYPT_FAILED',
      `field ${ref.field} of subject ${ref.subjectId} failed authentication (wrong key, subject or field, or altered)`,
    );
  }
  return plaintext.toString('utf8');
};

/** The form a value is compared in: trimmed; emails lower-cased, phones digits only, ID numbers upper-case, no spaces. */
export const normalizeForIndex = (field: string, value: string): string => {
  const trimmed = value.normalize('NFC').trim();
  switch (field) {
    case 'email':
      return trimmed.toLowerCase();
    case 'phone':
      return trimmed.replace(/\D/g, '');
    case 'idNumber':
      return trimmed.replace(/\s/g, '').toUpperCase();
    default:
      return trimmed;
  }
};

/** Keyed HMAC-SHA256 over `field NUL normalized value`: equality search without decrypting. */
export const blindIndex = (keyring: Keyring, field: string, value: string): string =>
  createHmac('sha256', keyring.blindIndexKey)
    .update(`${field}\u0000${normalizeForIndex(field, value)}`, 'utf8')
    .digest('hex');

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
