import { randomUUID } from 'node:crypto';
import { newSubject, type NewSubject } from '../../activities/subject-writer';
import type { Db } from '../../db/client';
import { notices, subjectFields, subjectKeys, subjects } from '../../db/schema';
import { defaultCatalog } from '../../domain/catalog';
import type { Keyring } from '../../runtime/keyring';

/** A subject made by `newSubject`, written as the import writes one: its row, its data key, its fields. */
export const insertNewSubject = async (
  db: Db,
  created: NewSubject,
  row: { legalHold?: boolean } = {},
): Promise<string> => {
  const id = created.subject.id;
  await db.insert(subjects).values({ ...created.subject, ...row });
  await db
    .insert(subjectKeys)
    .values({ subjectId: id, keyVersion: 1, kekVersion: created.kekVersion, wrappedKey: created.wrappedKey });
  await db.insert(subjectFields).values(created.fields.map((f) => ({ ...f, subjectId: id })));
  return id;
};

/** A subject with its email encrypted under its own data key, written as the import writes one. */
export const insertSubject = async (
  db: Db,
  keyring: Keyring,
  o: { locale: string; email?: string },
): Promise<string> => {
  const values = new Map<string, string>(o.email ? [['email', o.email]] : []);
  values.set('segment', 'retail');
  const created = newSubject(
    defaultCatalog,
    keyring,
    { externalRef: `ext-${randomUUID()}`, jurisdiction: 'CN', locale: o.locale, fields: {} },
    values,
  );
  return insertNewSubject(db, created);
};

export const NOTICE_TEXTS = {
  'zh-CN': { title: '营销信息使用告知', body: '我们将使用您的联系方式发送营销信息。' },
  en: { title: 'Use of your contact details for marketing', body: 'We will use your contact details for marketing.' },
};

/**
 * A notice row, written directly (the notices module validates and hashes; the notifier only reads it). The
 * default purpose `marketing` touches no catalog field; `credit-assessment` touches sensitive ones.
 */
export const insertNotice = async (db: Db, o: { purpose?: string } = {}): Promise<string> => {
  const id = randomUUID();
  await db.insert(notices).values({
    id,
    purpose: o.purpose ?? 'marketing',
    version: Math.floor(Math.random() * 1e9),
    texts: NOTICE_TEXTS,
    handler: { name: 'Example Retail Ltd', contact: 'privacy@retail.example' },
    previousHandler: { name: 'Old Retail Ltd' },
    textSha256: '0'.repeat(64),
    createdBy: 'test',
  });
  return id;
};
