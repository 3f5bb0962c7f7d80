import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decryptField, encryptField, fieldKeyVersion } from '../../../activities/crypto/field-cipher';
import { newDataKey } from '../../../activities/crypto/key-wrap';
import { lengthPrefixed, openWith, rejects, uint32 } from './helpers';

describe('field encryption', () => {
  const dek = newDataKey();
  const ref = { subjectId: randomUUID(), field: 'idNumber', keyVersion: 3 };
  const plaintext = '110101199003074578 王小明';

  it('round-trips and writes the versioned header', () => {
    const ciphertext = encryptField(dek, ref, plaintext);
    expect(ciphertext[0]).toBe(0x01);
    expect(fieldKeyVersion(ciphertext)).toBe(3);
    expect(ciphertext.includes(Buffer.from(plaintext))).toBe(false);
    expect(decryptField(dek, ref, ciphertext)).toBe(plaintext);
  });

  it('uses a fresh nonce each time', () => {
    expect(encryptField(dek, ref, plaintext).equals(encryptField(dek, ref, plaintext))).toBe(false);
  });

  it('rejects a tampered value without echoing the plaintext', () => {
    const ciphertext = encryptField(dek, ref, plaintext);
    for (const at of [10, ciphertext.length - 1]) {
      const tampered = Buffer.from(ciphertext);
      tampered[at]! ^= 0x01;
      const error = rejects('DECRYPT_FAILED', () => decryptField(dek, ref, tampered));
      expect(error.message).not.toContain(plaintext);
    }
    rejects('MALFORMED_CIPHERTEXT', () => decryptField(dek, ref, ciphertext.subarray(0, 20)));
  });

  it('rejects a value moved to another subject or another field', () => {
    const ciphertext = encryptField(dek, ref, plaintext);
    rejects('DECRYPT_FAILED', () => decryptField(dek, { ...ref, subjectId: randomUUID() }, ciphertext));
    rejects('DECRYPT_FAILED', () => decryptField(dek, { ...ref, field: 'name' }, ciphertext));
  });

  it('rejects a key-version mismatch, in the caller or in a rewritten header', () => {
    const ciphertext = encryptField(dek, ref, plaintext);
    rejects('KEY_VERSION_MISMATCH', () => decryptField(dek, { ...ref, keyVersion: 4 }, ciphertext));
    const relabelled = Buffer.from(ciphertext);
    relabelled.writeUInt32BE(4, 1);
    rejects('DECRYPT_FAILED', () => decryptField(dek, { ...ref, keyVersion: 4 }, relabelled));
    const otherFormat = Buffer.from(ciphertext);
    otherFormat[0] = 0x02;
    rejects('UNSUPPORTED_FORMAT', () => decryptField(dek, ref, otherFormat));
  });

  it('rejects another data key', () => {
    rejects('DECRYPT_FAILED', () => decryptField(newDataKey(), ref, encryptField(dek, ref, plaintext)));
  });
});

describe('field ciphertext format', () => {
  it('binds the field AAD as documented: purpose, format, key version, subject ID, field name', () => {
    const dek = newDataKey();
    const ref = { subjectId: randomUUID(), field: '姓名', keyVersion: 7 };
    const ciphertext = encryptField(dek, ref, '王小明');
    expect(ciphertext.length).toBe(5 + 12 + Buffer.byteLength('王小明') + 16);
    const aad = Buffer.concat([
      Buffer.from([0x46, 0x01]),
      uint32(7),
      lengthPrefixed(ref.subjectId),
      lengthPrefixed(ref.field),
    ]);
    expect(openWith(dek, aad, ciphertext.subarray(5)).toString('utf8')).toBe('王小明');
  });

  it('keeps (subject, field) pairs apart even when their concatenations are equal', () => {
    const dek = newDataKey();
    const ciphertext = encryptField(dek, { subjectId: 'ab', field: 'c', keyVersion: 1 }, 'x');
    rejects('DECRYPT_FAILED', () => decryptField(dek, { subjectId: 'a', field: 'bc', keyVersion: 1 }, ciphertext));
  });

  it('refuses names too long to length-prefix', () => {
    const long = 'x'.repeat(0x10000);
    rejects('INVALID_KEY', () =>
      encryptField(newDataKey(), { subjectId: randomUUID(), field: long, keyVersion: 1 }, 'v'),
    );
  });
});
