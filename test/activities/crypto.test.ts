import { createDecipheriv, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  blindIndex,
  CryptoError,
  decryptField,
  encryptField,
  fieldKeyVersion,
  newDataKey,
  normalizeForIndex,
  sha256Hex,
  sign,
  unwrapDataKey,
  verifySignature,
  wrapDataKey,
} from '../../activities/crypto';
import { generateKeyFile, parseKeyring, publicKeyPem, type Keyring } from '../../runtime/keyring';

const newKeyring = () => parseKeyring(generateKeyFile(), 'test');
const keyring = newKeyring();

const rejects = (code: string, run: () => unknown) => {
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

describe('ciphertext format and randomness', () => {
  // The AAD layouts documented in activities/crypto.ts, rebuilt here byte for byte.
  const utf8 = (s: string) => {
    const bytes = Buffer.from(s, 'utf8');
    const length = Buffer.alloc(2);
    length.writeUInt16BE(bytes.length);
    return Buffer.concat([length, bytes]);
  };
  const uint32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const openWith = (key: Buffer, aad: Buffer, sealed: Buffer) => {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12), { authTagLength: 16 });
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    return Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]);
  };

  it('binds the field AAD as documented: purpose, format, key version, subject ID, field name', () => {
    const dek = newDataKey();
    const ref = { subjectId: randomUUID(), field: '姓名', keyVersion: 7 };
    const ciphertext = encryptField(dek, ref, '王小明');
    expect(ciphertext.length).toBe(5 + 12 + Buffer.byteLength('王小明') + 16);
    const aad = Buffer.concat([Buffer.from([0x46, 0x01]), uint32(7), utf8(ref.subjectId), utf8(ref.field)]);
    expect(openWith(dek, aad, ciphertext.subarray(5)).toString('utf8')).toBe('王小明');
  });

  it('binds the data-key AAD as documented: purpose, key version, KEK version, subject ID', () => {
    const dek = newDataKey();
    const ref = { subjectId: randomUUID(), keyVersion: 2 };
    const { wrappedKey, kekVersion } = wrapDataKey(keyring, ref, dek);
    const aad = Buffer.concat([Buffer.from([0x4b]), uint32(2), uint32(kekVersion), utf8(ref.subjectId)]);
    expect(openWith(keyring.keks.get(kekVersion)!, aad, wrappedKey).equals(dek)).toBe(true);
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

  it('never hands out the same nonce or data key twice, across refills of the random buffer', () => {
    const dek = newDataKey();
    const ref = { subjectId: randomUUID(), field: 'email', keyVersion: 1 };
    const nonces = new Set<string>();
    const keys = new Set<string>();
    // 12,000 nonces and 2,000 keys: 208,000 bytes, three refills of the 64 KiB buffer.
    for (let i = 0; i < 12_000; i++) nonces.add(encryptField(dek, ref, 'v').subarray(5, 17).toString('hex'));
    for (let i = 0; i < 2_000; i++) keys.add(newDataKey().toString('hex'));
    expect(nonces.size).toBe(12_000);
    expect(keys.size).toBe(2_000);
    const first = newDataKey();
    const second = newDataKey();
    // Each key is its own copy: taking more random bytes never changes a key already handed out.
    const copy = Buffer.from(first);
    for (let i = 0; i < 10_000; i++) newDataKey();
    expect(first.equals(copy)).toBe(true);
    expect(first.equals(second)).toBe(false);
  });
});

describe('blind index', () => {
  it('is stable per key and differs across keys and fields', () => {
    const a = blindIndex(keyring, 'email', 'li.na@example.cn');
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(blindIndex(keyring, 'email', 'li.na@example.cn')).toBe(a);
    expect(blindIndex(newKeyring(), 'email', 'li.na@example.cn')).not.toBe(a);
    expect(blindIndex(keyring, 'contactEmail', 'li.na@example.cn')).not.toBe(a);
  });

  it('normalises before hashing', () => {
    expect(normalizeForIndex('email', '  Li.Na@Example.CN ')).toBe('li.na@example.cn');
    expect(normalizeForIndex('phone', '+86 (138) 0013-8000')).toBe('8613800138000');
    expect(normalizeForIndex('idNumber', ' 11010119900307457x ')).toBe('11010119900307457X');
    expect(normalizeForIndex('idNumber', 'ab 12 cd')).toBe('AB12CD');
    expect(normalizeForIndex('name', '  Wang Xiaoming ')).toBe('Wang Xiaoming');
    expect(blindIndex(keyring, 'email', ' LI.NA@example.cn')).toBe(blindIndex(keyring, 'email', 'li.na@example.cn'));
    expect(blindIndex(keyring, 'phone', '138-0013-8000')).toBe(blindIndex(keyring, 'phone', '13800138000'));
  });
});

describe('signatures', () => {
  const certificate = { id: 'c-1', subjects: 2, method: 'cryptographic erase', at: '2025-01-01T00:00:00.000Z' };

  it('signs the canonical form, verifiable with the key object or its PEM', () => {
    const signed = sign(keyring, certificate);
    expect(signed).toMatchObject({ keyId: keyring.signing.keyId, algorithm: 'Ed25519' });
    expect(keyring.signing.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(verifySignature(keyring.signing.publicKey, certificate, signed)).toBe(true);
    const reordered = { at: certificate.at, method: certificate.method, subjects: 2, id: 'c-1' };
    expect(verifySignature(publicKeyPem(keyring), reordered, signed.signature)).toBe(true);
  });

  it('fails for a tampered value, another key or a malformed signature', () => {
    const signed = sign(keyring, certificate);
    expect(verifySignature(keyring.signing.publicKey, { ...certificate, subjects: 3 }, signed)).toBe(false);
    expect(verifySignature(newKeyring().signing.publicKey, certificate, signed)).toBe(false);
    expect(verifySignature(keyring.signing.publicKey, certificate, 'not a signature')).toBe(false);
  });
});

describe('data-key wrapping', () => {
  const ref = { subjectId: randomUUID(), keyVersion: 1 };

  it('round-trips and binds the wrapped key to its subject and version', () => {
    const dek = newDataKey();
    const wrapped = wrapDataKey(keyring, ref, dek);
    expect(wrapped.kekVersion).toBe(1);
    expect(wrapped.wrappedKey.includes(dek)).toBe(false);
    expect(unwrapDataKey(keyring, { ...ref, ...wrapped }).equals(dek)).toBe(true);
    rejects('UNWRAP_FAILED', () => unwrapDataKey(keyring, { ...ref, ...wrapped, subjectId: randomUUID() }));
    rejects('UNWRAP_FAILED', () => unwrapDataKey(keyring, { ...ref, ...wrapped, keyVersion: 2 }));
    rejects('UNKNOWN_KEK_VERSION', () => unwrapDataKey(keyring, { ...ref, ...wrapped, kekVersion: 9 }));
  });

  it('unwraps keys wrapped under an older KEK after rotation', () => {
    const file = generateKeyFile();
    const before = parseKeyring(file, 'before');
    const dek = newDataKey();
    const old = wrapDataKey(before, ref, dek);
    const rotatedFile = { ...file, currentKekVersion: 2, keks: { ...file.keks, '2': generateKeyFile().keks['1']! } };
    const rotated: Keyring = parseKeyring(rotatedFile, 'rotated');
    const fresh = wrapDataKey(rotated, ref, dek);
    expect(fresh.kekVersion).toBe(2);
    expect(unwrapDataKey(rotated, { ...ref, ...old }).equals(dek)).toBe(true);
    expect(unwrapDataKey(rotated, { ...ref, ...fresh }).equals(dek)).toBe(true);
    // A KEK version relabelled on the row does not unwrap: the version is part of the AAD.
    rejects('UNWRAP_FAILED', () => unwrapDataKey(rotated, { ...ref, ...old, kekVersion: 2 }));
  });
});

it('hashes with SHA-256', () => {
  expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  expect(sha256Hex(Buffer.from('abc'))).toBe(sha256Hex('abc'));
});
