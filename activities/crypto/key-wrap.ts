import type { Keyring } from '../../runtime/keyring';
import { AadPurpose, KEY_BYTES, open, requireKey, requireUint32, seal, stringBytes, writeString } from './aead';
import { CryptoError } from './errors';
import { fillRandom } from './random';

export const newDataKey = (): Buffer => {
  const dek = Buffer.allocUnsafeSlow(KEY_BYTES);
  fillRandom(dek, 0, KEY_BYTES);
  return dek;
};

export interface DataKeyRef {
  subjectId: string;
  keyVersion: number;
}

/** 0x4b 'K' | keyVersion (uint32 BE) | kekVersion (uint32 BE) | len(subjectId) (uint16 BE) | subjectId (UTF-8) */
const wrapAad = (ref: DataKeyRef, kekVersion: number): Buffer => {
  requireUint32(ref.keyVersion, 'key version');
  requireUint32(kekVersion, 'KEK version');
  const subjectBytes = stringBytes(ref.subjectId, 'subject ID');
  const aad = Buffer.allocUnsafe(1 + 4 + 4 + 2 + subjectBytes);
  aad.writeUInt8(AadPurpose.wrap, 0);
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
