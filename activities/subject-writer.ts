import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type postgres from 'postgres';
import type { Db } from '../db/client';
import { classifyField, isEncrypted, type Catalog, type Classification } from '../domain/catalog';
import type { FieldValue, SubjectLine } from '../domain/subject-import';
import type { Keyring } from '../runtime/keyring';
import { encryptField } from './crypto/field-cipher';
import { newDataKey, wrapDataKey } from './crypto/key-wrap';
import type { DataKey } from './keys';
import { fieldBlindIndex } from './subject-blind-index';

/** The version a subject's first data key gets (as in keys.ts). */
export const FIRST_KEY_VERSION = 1;

export interface FieldRow {
  field: string;
  classification: Classification;
  classified: boolean;
  valueType: 'string' | 'number' | 'boolean';
  keyVersion: number | null;
  ciphertext: Buffer | null;
  plainValue: string | null;
  blindIndex: string | null;
}

export interface SubjectRecord {
  id: string;
  externalRef: string;
  jurisdiction: string;
  locale: string;
  retentionUntil: string | null;
}

export interface NewSubject {
  subject: SubjectRecord;
  wrappedKey: Buffer;
  kekVersion: number;
  fields: FieldRow[];
}

const valueTypeOf = (value: FieldValue): FieldRow['valueType'] =>
  typeof value === 'number' ? 'number' : typeof value === 'boolean' ? 'boolean' : 'string';

/** Classifies every value; personal and sensitive ones are encrypted under the subject's data key. */
export const encryptFields = (
  catalog: Catalog,
  keyring: Keyring,
  subjectId: string,
  key: DataKey,
  values: ReadonlyMap<string, FieldValue>,
): FieldRow[] => {
  const rows: FieldRow[] = [];
  for (const [field, value] of values) {
    const { entry, classified } = classifyField(catalog, field);
    const text = typeof value === 'string' ? value : String(value);
    const encrypted = isEncrypted(entry.classification);
    rows.push({
      field,
      classification: entry.classification,
      classified,
      valueType: valueTypeOf(value),
      keyVersion: encrypted ? key.keyVersion : null,
      ciphertext: encrypted ? encryptField(key.dek, { subjectId, field, keyVersion: key.keyVersion }, text) : null,
      plainValue: encrypted ? null : text,
      blindIndex: entry.blindIndex && classified ? fieldBlindIndex(keyring, field, entry, text) : null,
    });
  }
  return rows;
};

/** A new subject: a fresh ID and data key (wrapped by the current KEK), its values encrypted. */
export const newSubject = (
  catalog: Catalog,
  keyring: Keyring,
  line: SubjectLine & { locale: string },
  values: ReadonlyMap<string, FieldValue>,
): NewSubject => {
  const id = randomUUID();
  const dek = newDataKey();
  const { wrappedKey, kekVersion } = wrapDataKey(keyring, { subjectId: id, keyVersion: FIRST_KEY_VERSION }, dek);
  return {
    subject: {
      id,
      externalRef: line.externalRef,
      jurisdiction: line.jurisdiction,
      locale: line.locale,
      retentionUntil: line.retentionUntil ?? null,
    },
    wrappedKey,
    kekVersion,
    fields: encryptFields(catalog, keyring, id, { keyVersion: FIRST_KEY_VERSION, dek }, values),
  };
};

/**
 * A Postgres array literal, sent as one text parameter and cast in SQL (`${pgArray(xs)}::uuid[]`).
 * postgres.js cannot serialize JS arrays in a transaction that opens a fresh connection (its array
 * types are not loaded yet), so arrays never reach it as arrays.
 */
export const pgArray = (values: readonly (string | number | null)[]): string =>
  `{${values.map((v) => (v === null ? 'NULL' : typeof v === 'number' ? String(v) : `"${v.replace(/["\\]/g, '\\$&')}"`)).join(',')}}`;

/** postgres.js under the drizzle instance: COPY has no drizzle API. */
export const rawSql = (db: Db): postgres.Sql => {
  const client = (db as Db & { $client?: postgres.Sql }).$client;
  if (!client) throw new Error('the database handle has no postgres.js client');
  return client;
};

// COPY text format: backslash, tab, newline and carriage return are escaped; \N is NULL.
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
const text = (value: string | null): string =>
  value === null ? '\\N' : value.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]!);
const bytes = (value: Buffer | null): string => (value === null ? '\\N' : `\\\\x${value.toString('hex')}`);
const int = (value: number | null): string => (value === null ? '\\N' : String(value));

const FLUSH_CHARS = 1 << 16;

const COPY_TIMEOUT_MS = 120_000;

/**
 * Streams rows into a COPY … FROM STDIN, in 64 KiB writes and respecting back-pressure.
 *
 * postgres.js resolves the query with the stream when COPY starts, and reports an error that arrives
 * after the end of the data (a refused value, a constraint) only through the query's `reject`, which
 * is then a no-op: the stream never finishes, and the transaction sat "idle in transaction (aborted)"
 * holding its connection until the time limit. So the rejection is intercepted and ends the wait at
 * once; the time limit only guards against a server that never answers.
 */
const copyRows = async <T>(
  tx: postgres.TransactionSql,
  statement: string,
  rows: readonly T[],
  format: (row: T) => string,
): Promise<void> => {
  if (rows.length === 0) return;
  const query = tx.unsafe(statement) as postgres.PendingQuery<postgres.Row[]> & { reject(err: unknown): void };
  let timer: NodeJS.Timeout | undefined;
  const failed = new Promise<never>((_, reject) => {
    const settle = query.reject;
    query.reject = (err: unknown) => {
      reject(err);
      settle(err);
    };
    timer = setTimeout(() => reject(new Error(`COPY did not complete in ${COPY_TIMEOUT_MS} ms`)), COPY_TIMEOUT_MS);
  });
  failed.catch(() => {});
  const until = <R>(step: Promise<R>): Promise<R> => Promise.race([step, failed]);
  try {
    const writable = await until(query.writable());
    const finished = until(once(writable, 'finish'));
    finished.catch(() => {});
    let pending = '';
    for (const row of rows) {
      pending += format(row);
      if (pending.length >= FLUSH_CHARS) {
        if (!writable.write(pending)) await until(once(writable, 'drain'));
        pending = '';
      }
    }
    writable.end(pending);
    await finished;
  } finally {
    clearTimeout(timer);
  }
};

const FIELD_COLUMNS =
  'subject_id, field, classification, classified, value_type, key_version, ciphertext, plain_value, blind_index';
const fieldLine = (f: FieldRow & { subjectId: string }) =>
  `${f.subjectId}\t${text(f.field)}\t${f.classification}\t${f.classified ? 't' : 'f'}\t${f.valueType}\t${int(f.keyVersion)}\t${bytes(f.ciphertext)}\t${text(f.plainValue)}\t${text(f.blindIndex)}\n`;

/**
 * Inserts new subjects inside the caller's transaction; a subject whose externalRef another import
 * inserted meanwhile is skipped. Their wrapped keys and fields follow with COPY. Returns how many were inserted.
 */
export const insertNewSubjects = async (
  tx: postgres.TransactionSql,
  importId: string,
  subjects: readonly NewSubject[],
): Promise<number> => {
  if (subjects.length === 0) return 0;
  const s = subjects.map((x) => x.subject);
  const inserted = await tx<{ id: string }[]>`
    insert into subjects (id, external_ref, jurisdiction, locale, retention_until, import_id)
    select u.*, ${importId} from unnest(${pgArray(s.map((x) => x.id))}::uuid[], ${pgArray(s.map((x) => x.externalRef))}::text[],
      ${pgArray(s.map((x) => x.jurisdiction))}::text[], ${pgArray(s.map((x) => x.locale))}::text[], ${pgArray(s.map((x) => x.retentionUntil))}::date[]) as u
    on conflict (external_ref) do nothing
    returning id`;
  const ids = new Set(inserted.map((r) => r.id));
  const kept = ids.size === subjects.length ? subjects : subjects.filter((x) => ids.has(x.subject.id));
  await copyRows(
    tx,
    'copy subject_keys (subject_id, key_version, kek_version, wrapped_key) from stdin',
    kept,
    (x) => `${x.subject.id}\t${FIRST_KEY_VERSION}\t${x.kekVersion}\t${bytes(x.wrappedKey)}\n`,
  );
  await copyRows(
    tx,
    `copy subject_fields (${FIELD_COLUMNS}) from stdin`,
    kept.flatMap((x) => x.fields.map((f) => ({ subjectId: x.subject.id, ...f }))),
    fieldLine,
  );
  return kept.length;
};

export interface SubjectUpdate {
  subject: SubjectRecord;
  fields: FieldRow[];
}

/** Upsert: overwrites the subject's attributes and the fields on the line; fields not on the line stay. */
export const updateSubjects = async (
  tx: postgres.TransactionSql,
  importId: string,
  updates: readonly SubjectUpdate[],
) => {
  if (updates.length === 0) return;
  const s = updates.map((u) => u.subject);
  await tx`
    update subjects set jurisdiction = u.jurisdiction, locale = u.locale, retention_until = u.retention_until,
      import_id = ${importId}, updated_at = now()
    from unnest(${pgArray(s.map((x) => x.id))}::uuid[], ${pgArray(s.map((x) => x.jurisdiction))}::text[], ${pgArray(s.map((x) => x.locale))}::text[],
      ${pgArray(s.map((x) => x.retentionUntil))}::date[]) as u(id, jurisdiction, locale, retention_until)
    where subjects.id = u.id`;
  await tx.unsafe(
    'create temp table if not exists subject_fields_upsert (like subject_fields including defaults) on commit delete rows',
  );
  await copyRows(
    tx,
    `copy subject_fields_upsert (${FIELD_COLUMNS}) from stdin`,
    updates.flatMap((u) => u.fields.map((f) => ({ subjectId: u.subject.id, ...f }))),
    fieldLine,
  );
  await tx.unsafe(`
    insert into subject_fields (${FIELD_COLUMNS})
    select ${FIELD_COLUMNS} from subject_fields_upsert
    on conflict (subject_id, field) do update set classification = excluded.classification,
      classified = excluded.classified, value_type = excluded.value_type, key_version = excluded.key_version,
      ciphertext = excluded.ciphertext, plain_value = excluded.plain_value, blind_index = excluded.blind_index,
      updated_at = now()`);
  // Emptied now, not at commit: a batch isolating a refused line writes its halves in one transaction.
  await tx.unsafe('delete from subject_fields_upsert');
};
