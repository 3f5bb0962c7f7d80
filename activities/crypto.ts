import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPublicKey,
  randomBytes,
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

const requireKey = (key: Buffer, what: string) => {
  if (key.length !== KEY_BYTES) throw new CryptoError('INVALID_KEY', `${what} must be ${KEY_BYTES} bytes`);
};

/** nonce | ciphertext | tag */
const seal = (key: Buffer, aad: Buffer, plaintext: Buffer): Buffer => {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES }).setAAD(aad);
  return Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
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

const aadOf = (value: Record<string, unknown>) => Buffer.from(canonicalJson(value), 'utf8');

export const newDataKey = (): Buffer => randomBytes(KEY_BYTES);

export interface DataKeyRef {
  subjectId: string;
  keyVersion: number;
}

const wrapAad = (ref: DataKeyRef, kekVersion: number) =>
  aadOf({ purpose: 'custodian.dek', subjectId: ref.subjectId, keyVersion: ref.keyVersion, kekVersion });

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

const fieldAad = (ref: FieldRef) =>
  aadOf({ format: FIELD_FORMAT, subjectId: ref.subjectId, field: ref.field, keyVersion: ref.keyVersion });

/** format (0x01) | keyVersion (uint32 BE) | nonce (12) | ciphertext | tag (16); AAD binds subject, field, version. */
export const encryptField = (dek: Buffer, ref: FieldRef, plaintext: string): Buffer => {
  requireKey(dek, 'data key');
  if (!Number.isInteger(ref.keyVersion) || ref.keyVersion < 0 || ref.keyVersion > 0xffffffff) {
    throw new CryptoError('INVALID_KEY', 'key version must be a uint32');
  }
  const header = Buffer.alloc(FIELD_HEADER_BYTES);
  header.writeUInt8(FIELD_FORMAT, 0);
  header.writeUInt32BE(ref.keyVersion, 1);
  return Buffer.concat([header, seal(dek, fieldAad(ref), Buffer.from(plaintext, 'utf8'))]);
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
