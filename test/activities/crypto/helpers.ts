import { createDecipheriv } from 'node:crypto';
import { expect } from 'vitest';
import { CryptoError } from '../../../activities/crypto/errors';
import { generateKeyFile, parseKeyring } from '../../../runtime/keyring';

export const newKeyring = () => parseKeyring(generateKeyFile(), 'test');

export const rejects = (code: string, run: () => unknown) => {
  let thrown: unknown;
  try {
    run();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(CryptoError);
  expect((thrown as CryptoError).code).toBe(code);
  return thrown as CryptoError;
};

// Pieces of the documented AAD layouts, rebuilt here byte for byte.
export const lengthPrefixed = (s: string) => {
  const bytes = Buffer.from(s, 'utf8');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(bytes.length);
  return Buffer.concat([length, bytes]);
};

export const uint32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

/** AES-256-GCM open written against node:crypto directly, independent of aead.ts. */
export const openWith = (key: Buffer, aad: Buffer, sealed: Buffer) => {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12), { authTagLength: 16 });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]);
};
