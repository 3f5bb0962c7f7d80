import { randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client';
import { kekVersions } from '../db/schema';
import { adoptKekVersions, type Keyring } from '../runtime/keyring';
import type { DbOrTx } from './audit';
import { KEY_BYTES, open, seal } from './crypto/aead';
import { CryptoError } from './crypto/errors';

// AAD purpose byte of a wrapped KEK version ('V'), apart from the purposes in crypto/aead.ts.
const KEK_VERSION_AAD = 0x56;

/** 'V' | version (uint32 BE) | wrapping version (uint32 BE): a wrapped KEK cannot be passed off as another version. */
const aad = (version: number, wrappedBy: number): Buffer => {
  const bytes = Buffer.alloc(9);
  bytes.writeUInt8(KEK_VERSION_AAD, 0);
  bytes.writeUInt32BE(version, 1);
  bytes.writeUInt32BE(wrappedBy, 5);
  return bytes;
};

/** A fresh KEK for `version`, and that KEK sealed under the keyring's KEK `wrappedBy`. */
export const newKekVersion = (
  keyring: Keyring,
  version: number,
  wrappedBy: number,
): { key: Buffer; wrappedKey: Buffer } => {
  const root = keyring.keks.get(wrappedBy);
  if (!root) throw new CryptoError('UNKNOWN_KEK_VERSION', `KEK version ${wrappedBy} is not in the keyring`);
  const key = randomBytes(KEY_BYTES);
  return { key, wrappedKey: seal(root, aad(version, wrappedBy), key) };
};

const unwrapKekVersion = (keyring: Keyring, row: { version: number; wrappedKey: Buffer; wrappedBy: number }) => {
  const root = keyring.keks.get(row.wrappedBy);
  if (!root) throw new CryptoError('UNKNOWN_KEK_VERSION', `KEK version ${row.wrappedBy} is not in the keyring`);
  const key = open(root, aad(row.version, row.wrappedBy), row.wrappedKey);
  if (!key || key.length !== KEY_BYTES)
    throw new CryptoError('UNWRAP_FAILED', `KEK version ${row.version} failed to unwrap (wrong key or altered)`);
  return key;
};

/**
 * Reads the KEK versions key rotation made and adds them to the keyring (runtime/keyring.ts adoptKekVersions); the
 * newest active version becomes current. Nothing changes when rotation never ran. Returns the current version.
 */
export const loadKekVersions = async (db: Db | DbOrTx, keyring: Keyring): Promise<number> => {
  const rows = await db.select().from(kekVersions);
  const made = new Map<number, Buffer>();
  for (const row of rows)
    if (row.source === 'rotation' && row.wrappedKey && row.wrappedBy !== null)
      made.set(
        row.version,
        keyring.keks.get(row.version) ??
          unwrapKekVersion(keyring, { version: row.version, wrappedKey: row.wrappedKey, wrappedBy: row.wrappedBy }),
      );
  const active = rows.filter((r) => r.status === 'active' && (r.source === 'keyring' || made.has(r.version)));
  if (made.size === 0 || active.length === 0) return keyring.currentKekVersion;
  const current = Math.max(...active.map((r) => r.version));
  adoptKekVersions(keyring, made, current);
  return current;
};

/** The stored state of one KEK version, if rotation has seen it. */
export const kekVersionState = async (db: DbOrTx, version: number) =>
  (await db.select().from(kekVersions).where(eq(kekVersions.version, version)))[0];
