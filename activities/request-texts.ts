import { createHash, randomUUID } from 'node:crypto';
import { inArray } from 'drizzle-orm';
import type { Db } from '../db/client';
import { requestTexts } from '../db/schema';
import type { Keyring } from '../runtime/keyring';
import type { DbOrTx } from './audit';
import { decryptField, encryptField } from './crypto/field-cipher';
import { dataKeys } from './keys';

export const textSha256 = (body: string) => createHash('sha256').update(body, 'utf8').digest('hex');

/** The AAD's field name binds a sealed text to its row: moved to another row, it fails authentication. */
const ref = (subjectId: string, id: string, keyVersion: number) => ({
  subjectId,
  field: `request-text:${id}`,
  keyVersion,
});

/**
 * A request's texts (the filing's details, a complaint, statements, reasons, notes, replies, new values), sealed
 * under the subject's data key: workflow history, the timeline and the audit carry the text's ID and SHA-256 only,
 * and destroying the subject's key shreds them with the subject.
 */
export const requestTextStore = (d: { db: Db; keyring: Keyring }) => {
  const keys = dataKeys(d);
  const keyOf = async (subjectId: string) => (await keys.loadDataKey(subjectId)) ?? keys.createDataKey(subjectId);
  return {
    async store(
      db: DbOrTx,
      t: { requestId: string; subjectId: string; kind: string; body: string; createdBy: string },
    ): Promise<{ id: string; sha256: string }> {
      const id = randomUUID();
      const key = await keyOf(t.subjectId);
      const sha256 = textSha256(t.body);
      await db.insert(requestTexts).values({
        id,
        requestId: t.requestId,
        subjectId: t.subjectId,
        kind: t.kind,
        keyVersion: key.keyVersion,
        ciphertext: encryptField(key.dek, ref(t.subjectId, id, key.keyVersion), t.body),
        sha256,
        createdBy: t.createdBy,
      });
      return { id, sha256 };
    },

    /** The texts in clear by ID; a text whose key is gone (the subject destroyed) is left out. */
    async read(ids: readonly (string | null | undefined)[]): Promise<Map<string, { kind: string; body: string }>> {
      const wanted = [...new Set(ids.filter((id): id is string => !!id))];
      if (wanted.length === 0) return new Map();
      const rows = await d.db.select().from(requestTexts).where(inArray(requestTexts.id, wanted));
      const subjectKeys = await keys.loadDataKeys(rows.map((r) => r.subjectId));
      const out = new Map<string, { kind: string; body: string }>();
      for (const r of rows) {
        const key = subjectKeys.get(r.subjectId);
        if (!key || key.keyVersion !== r.keyVersion) continue;
        out.set(r.id, {
          kind: r.kind,
          body: decryptField(key.dek, ref(r.subjectId, r.id, r.keyVersion), r.ciphertext),
        });
      }
      return out;
    },

    /** Removes texts a refused update left unreferenced. */
    async drop(ids: string[]) {
      if (ids.length) await d.db.delete(requestTexts).where(inArray(requestTexts.id, ids));
    },
  };
};
export type RequestTextStore = ReturnType<typeof requestTextStore>;
