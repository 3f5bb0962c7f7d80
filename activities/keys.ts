import { desc, eq, inArray } from 'drizzle-orm';
import type { Db } from '../db/client';
import { subjectKeys } from '../db/schema';
import type { Keyring } from '../runtime/keyring';
import { CryptoError } from './crypto/errors';
import { newDataKey, unwrapDataKey, wrapDataKey } from './crypto/key-wrap';
import { loadKekVersions } from './key-rotation-keks';

export interface DataKey {
  keyVersion: number;
  dek: Buffer;
}

type WrappedRow = Pick<typeof subjectKeys.$inferSelect, 'subjectId' | 'keyVersion' | 'kekVersion' | 'wrappedKey'>;

const FIRST_KEY_VERSION = 1;
// Keeps `in (...)` well under the Postgres bind-parameter limit.
const BATCH = 5_000;

const wrappedColumns = {
  subjectId: subjectKeys.subjectId,
  keyVersion: subjectKeys.keyVersion,
  kekVersion: subjectKeys.kekVersion,
  wrappedKey: subjectKeys.wrappedKey,
};

/**
 * Per-subject data keys, stored only wrapped by a KEK. These return plaintext keys: call them from
 * inside activities, never register them as activities (their results would land in workflow history).
 */
export const dataKeys = (d: { db: Db; keyring: Keyring }) => {
  const unwrapNow = (row: WrappedRow): DataKey => ({ keyVersion: row.keyVersion, dek: unwrapDataKey(d.keyring, row) });
  // A KEK version another process's key rotation made is read from the database the first time it is met.
  const unwrap = async (row: WrappedRow): Promise<DataKey> => {
    try {
      return unwrapNow(row);
    } catch (err) {
      if (!(err instanceof CryptoError && err.code === 'UNKNOWN_KEK_VERSION')) throw err;
      await loadKekVersions(d.db, d.keyring);
      return unwrapNow(row);
    }
  };

  const loadDataKey = async (subjectId: string): Promise<DataKey | undefined> => {
    const [row] = await d.db
      .select(wrappedColumns)
      .from(subjectKeys)
      .where(eq(subjectKeys.subjectId, subjectId))
      .orderBy(desc(subjectKeys.keyVersion))
      .limit(1);
    return row && (await unwrap(row));
  };

  return {
    /** Idempotent: a retry reads back the key stored first instead of generating a second one. */
    async createDataKey(subjectId: string): Promise<DataKey> {
      const keyVersion = FIRST_KEY_VERSION;
      const { wrappedKey, kekVersion } = wrapDataKey(d.keyring, { subjectId, keyVersion }, newDataKey());
      await d.db.insert(subjectKeys).values({ subjectId, keyVersion, kekVersion, wrappedKey }).onConflictDoNothing();
      const stored = await loadDataKey(subjectId);
      if (!stored) throw new Error(`data key of subject ${subjectId} vanished right after it was stored`);
      return stored;
    },

    /** The latest data key of a subject; undefined when it never had one or it was destroyed. */
    loadDataKey,

    /** The latest data key of each subject that has one. */
    async loadDataKeys(subjectIds: readonly string[]): Promise<Map<string, DataKey>> {
      const latest = new Map<string, WrappedRow>();
      const unique = [...new Set(subjectIds)];
      for (let i = 0; i < unique.length; i += BATCH) {
        const rows = await d.db
          .select(wrappedColumns)
          .from(subjectKeys)
          .where(inArray(subjectKeys.subjectId, unique.slice(i, i + BATCH)));
        for (const row of rows) {
          const seen = latest.get(row.subjectId);
          if (!seen || seen.keyVersion < row.keyVersion) latest.set(row.subjectId, row);
        }
      }
      const keys = new Map<string, DataKey>();
      for (const [subjectId, row] of latest) keys.set(subjectId, await unwrap(row));
      return keys;
    },

    /** Crypto-shred: deletes every wrapped key of the subject, leaving its ciphertext unreadable. Idempotent. */
    async destroyDataKeys(subjectId: string): Promise<{ destroyed: number }> {
      const deleted = await d.db
        .delete(subjectKeys)
        .where(eq(subjectKeys.subjectId, subjectId))
        .returning({ keyVersion: subjectKeys.keyVersion });
      return { destroyed: deleted.length };
    },
  };
};

export type DataKeys = ReturnType<typeof dataKeys>;
