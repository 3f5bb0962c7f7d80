import {
  AadPurpose,
  NONCE_BYTES,
  open,
  requireKey,
  requireUint32,
  seal,
  stringBytes,
  TAG_BYTES,
  writeString,
} from './aead';
import { CryptoError } from './errors';

const FIELD_FORMAT = 0x01;
const FIELD_HEADER_BYTES = 1 + 4;

export interface FieldRef {
  subjectId: string;
  field: string;
  /** The version of the data key in hand: written into the header on encrypt, required to match on decrypt. */
  keyVersion: number;
}

/*
 * 0x46 'F' | format (uint8, 0x01) | keyVersion (uint32 BE) | len(subjectId) (uint16 BE) | subjectId (UTF-8)
 *          | len(field) (uint16 BE) | field (UTF-8)
 */
const fieldAad = (ref: FieldRef): Buffer => {
  requireUint32(ref.keyVersion, 'key version');
  const subjectBytes = stringBytes(ref.subjectId, 'subject ID');
  const fieldBytes = stringBytes(ref.field, 'field name');
  const aad = Buffer.allocUnsafe(1 + 1 + 4 + 2 + subjectBytes + 2 + fieldBytes);
  aad.writeUInt8(AadPurpose.field, 0);
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
