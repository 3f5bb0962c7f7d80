import { hkdfSync, randomBytes, scryptSync } from 'node:crypto';
import type { Keyring } from '../runtime/keyring';
import { open, seal } from './crypto/aead';

/**
 * An export is sealed (AES-256-GCM) under a fresh content key; the content key is wrapped either by a key the
 * keyring derives (a link: the server opens it once, when the link is followed) or by a one-time password's scrypt
 * key (the server cannot open it: only whoever holds the password). The AAD binds both to the export's ID.
 */
const aad = (exportId: string, what: 'content' | 'key') => Buffer.from(`custodian/request-export/${what}/${exportId}`);

const linkWrapKey = (keyring: Keyring) =>
  Buffer.from(hkdfSync('sha256', keyring.blindIndexKey, Buffer.alloc(0), 'custodian/request-export-key/v1', 32));

// scrypt's cost is the password's whole protection: N = 2^15 (32 MiB), well above the 2^14 interactive minimum.
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const passwordKey = (password: string, salt: Buffer) => scryptSync(password.normalize('NFC'), salt, 32, SCRYPT);

export const sealExport = (exportId: string, plaintext: string) => {
  const contentKey = randomBytes(32);
  return { contentKey, sealed: seal(contentKey, aad(exportId, 'content'), plaintext) };
};

/** `K` | sealed content key, under the keyring's export key. */
export const wrapForLink = (keyring: Keyring, exportId: string, contentKey: Buffer) =>
  Buffer.concat([Buffer.from('K'), seal(linkWrapKey(keyring), aad(exportId, 'key'), contentKey)]);

/** `P` | salt (16) | sealed content key, under the password's scrypt key. */
export const wrapForPassword = (password: string, exportId: string, contentKey: Buffer) => {
  const salt = randomBytes(16);
  return Buffer.concat([Buffer.from('P'), salt, seal(passwordKey(password, salt), aad(exportId, 'key'), contentKey)]);
};

const openContent = (exportId: string, contentKey: Buffer | undefined, sealed: Buffer): string | undefined => {
  if (!contentKey) return undefined;
  return open(contentKey, aad(exportId, 'content'), sealed)?.toString('utf8');
};

const unwrapLinkKey = (keyring: Keyring, exportId: string, wrappedKey: Buffer) =>
  wrappedKey[0] === 0x4b ? open(linkWrapKey(keyring), aad(exportId, 'key'), wrappedKey.subarray(1)) : undefined;

export const openLinkExport = (keyring: Keyring, exportId: string, wrappedKey: Buffer, sealed: Buffer) =>
  openContent(exportId, unwrapLinkKey(keyring, exportId, wrappedKey), sealed);

/** Moves a keyring-wrapped content key under a one-time password: afterwards only the password opens the export. */
export const rewrapForPassword = (keyring: Keyring, exportId: string, wrappedKey: Buffer, password: string) => {
  const contentKey = unwrapLinkKey(keyring, exportId, wrappedKey);
  return contentKey && wrapForPassword(password, exportId, contentKey);
};

/** What the owner downloads for a password export: everything but the password. */
export interface SealedExportFile {
  format: 'custodian-sealed-export/v1';
  exportId: string;
  wrappedKey: string;
  sealed: string;
}

/** Opens a password export (the subject's side, or a test): undefined for a wrong password or altered bytes. */
export const openPasswordExport = (file: SealedExportFile, password: string): string | undefined => {
  const wrapped = Buffer.from(file.wrappedKey, 'base64');
  if (wrapped[0] !== 0x50 || wrapped.length < 17) return undefined;
  const contentKey = open(
    passwordKey(password, wrapped.subarray(1, 17)),
    aad(file.exportId, 'key'),
    wrapped.subarray(17),
  );
  return openContent(file.exportId, contentKey, Buffer.from(file.sealed, 'base64'));
};

/** 24 characters from a 32-letter alphabet without look-alikes: 120 bits. */
export const oneTimePassword = () => {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  return [...randomBytes(24)].map((b) => alphabet[b % 32]).join('');
};
