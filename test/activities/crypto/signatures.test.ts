import { describe, expect, it } from 'vitest';
import { sha256Hex, sign, verifySignature } from '../../../activities/crypto/signatures';
import { publicKeyPem } from '../../../runtime/keyring';
import { newKeyring } from './helpers';

const keyring = newKeyring();

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

it('hashes with SHA-256', () => {
  expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  expect(sha256Hex(Buffer.from('abc'))).toBe(sha256Hex('abc'));
});
