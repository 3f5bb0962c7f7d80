import { randomUUID } from 'node:crypto';
import { and, eq, inArray } from 'drizzle-orm';
import { processTexts } from '../db/schema';
import type { DbOrTx } from './audit';
import { sha256Hex } from './crypto/signatures';

export interface ProcessText {
  id: string;
  kind: string;
  body: string;
  sha256: string;
  createdBy: string;
  createdAt: Date;
}

/**
 * The free text people write for one kind of process (`destruction`: the request's reason, approvers' comments, a
 * cancellation's reason), kept out of workflow input and history: the API stores a text, then hands the workflow its
 * ID; reads join the texts back by process ID. A text an update refused (or did not take) is dropped again.
 */
export const processTextStore = (process: string) => ({
  async store(
    db: DbOrTx,
    t: { processId: string; kind: string; body: string; createdBy: string },
  ): Promise<{ id: string; sha256: string }> {
    const id = randomUUID();
    const sha256 = sha256Hex(t.body);
    await db.insert(processTexts).values({ id, process, ...t, sha256 });
    return { id, sha256 };
  },

  /** Every text of one process, by ID. */
  async read(db: DbOrTx, processId: string): Promise<Map<string, ProcessText>> {
    const rows = await db
      .select()
      .from(processTexts)
      .where(and(eq(processTexts.process, process), eq(processTexts.processId, processId)));
    return new Map(rows.map((r) => [r.id, r]));
  },

  async drop(db: DbOrTx, ids: readonly string[]): Promise<void> {
    if (ids.length)
      await db.delete(processTexts).where(and(eq(processTexts.process, process), inArray(processTexts.id, [...ids])));
  },
});

export const destructionTexts = processTextStore('destruction');
