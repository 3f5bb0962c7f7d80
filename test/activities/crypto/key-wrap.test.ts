import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newDataKey, unwrapDataKey, wrapDataKey } from '../../../activities/crypto/key-wrap';
import { generateKeyFile, parseKeyring, type Keyring } from '../../../runtime/keyring';
import { lengthPrefixed, newKeyring, openWith, rejects, uint32 } from './helpers';

const keyring = newKeyring();

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

  it('binds the data-key AAD as documented: purpose, key version, KEK version, subject ID', () => {
    const dek = newDataKey();
    const ref = { subjectId: randomUUID(), keyVersion: 2 };
    const { wrappedKey, kekVersion } = wrapDataKey(keyring, ref, dek);
    const aad = Buffer.concat([Buffer.from([0x4b]), uint32(2), uint32(kekVersion), lengthPrefixed(ref.subjectId)]);
    expect(openWith(keyring.keks.get(kekVersion)!, aad, wrappedKey).equals(dek)).toBe(true);
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
