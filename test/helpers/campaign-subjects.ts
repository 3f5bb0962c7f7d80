import { randomUUID } from 'node:crypto';
import { insertNewSubjects, newSubject, rawSql } from '../../activities/subject-writer';
import type { Db } from '../../db/client';
import { defaultCatalog } from '../../domain/catalog';
import type { Keyring } from '../../runtime/keyring';

/**
 * `count` subjects with an encrypted example.com address each, written in bulk as the import writes them
 * (one transaction per 1,000, under `importId`, a fresh one unless given). No vitest import: the bench uses it.
 */
export const insertSubjects = async (
  db: Db,
  keyring: Keyring,
  count: number,
  o: { jurisdiction?: string; locale?: string; importId?: string; withoutAddress?: boolean } = {},
): Promise<{ importId: string; ids: string[] }> => {
  const importId = o.importId ?? randomUUID();
  const ids: string[] = [];
  const prefix = randomUUID().slice(0, 8);
  for (let from = 0; from < count; from += 1000) {
    const batch = Array.from({ length: Math.min(1000, count - from) }, (_, k) => {
      const n = `${prefix}-${from + k}`;
      const values = new Map<string, string>([['segment', 'retail']]);
      if (!o.withoutAddress) values.set('email', `campaign.${n}@example.com`);
      return newSubject(
        defaultCatalog,
        keyring,
        { externalRef: `CMP-${n}`, jurisdiction: o.jurisdiction ?? 'CN', locale: o.locale ?? 'zh-CN', fields: {} },
        values,
      );
    });
    await rawSql(db).begin((tx) => insertNewSubjects(tx, importId, batch));
    ids.push(...batch.map((s) => s.subject.id));
  }
  return { importId, ids };
};
