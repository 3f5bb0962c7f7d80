import type postgres from 'postgres';
import type { Db } from '../db/client';
import type { Catalog } from '../domain/catalog';
import type { ImportCounts, ImportCursor, ImportMode, ImportReject } from '../domain/subject-import';
import type { Keyring } from '../runtime/keyring';
import { dataKeys } from './keys';
import {
  encryptFields,
  insertNewSubjects,
  newSubject,
  pgArray,
  rawSql,
  updateSubjects,
  type NewSubject,
  type SubjectUpdate,
} from './subject-writer';
import { MAX_UNCLASSIFIED_NAMES, type PreparedBatch, type ValidLine } from './subject-prepare';

export interface BatchDeps {
  db: Db;
  keyring: Keyring;
  catalog: Catalog;
}

export interface BatchOutcome {
  counts: ImportCounts;
  end: ImportCursor;
}

class BatchAlreadyCommitted extends Error {}

interface Existing {
  id: string;
  importId: string | null;
  status: string;
}

interface Resolution {
  inserts: NewSubject[];
  updates: SubjectUpdate[];
  duplicates: number;
  rejects: ImportReject[];
}

const inFileDuplicate = (line: number): ImportReject => ({
  line,
  reason: 'duplicate_in_file',
  message: 'externalRef appears on an earlier line of this import',
});

/**
 * Decides each line against the registry. A line is a duplicate_in_file reject when an earlier line of
 * this import created or updated the same subject; a subject that existed before the import is a duplicate
 * (insert mode) or is updated (upsert mode).
 */
const resolve = async (
  d: BatchDeps,
  sql: postgres.Sql,
  importId: string,
  mode: ImportMode,
  batch: PreparedBatch,
): Promise<Resolution> => {
  const refs = [...new Set(batch.valid.map((v) => v.subject.externalRef))];
  const rows = refs.length
    ? await sql<{ id: string; external_ref: string; import_id: string | null; status: string }[]>`
        select id, external_ref, import_id, status from subjects where external_ref = any(${pgArray(refs)}::text[])`
    : [];
  const existing = new Map<string, Existing>(
    rows.map((r) => [r.external_ref, { id: r.id, importId: r.import_id, status: r.status }]),
  );
  const claimed = new Set<string>();
  const duplicated = new Set<string>();
  const resolution: Resolution = { inserts: [], updates: [], duplicates: 0, rejects: [] };
  const toUpdate: { line: ValidLine; id: string }[] = [];
  for (const v of batch.valid) {
    const ref = v.subject.externalRef;
    const found = existing.get(ref);
    if (claimed.has(ref) || found?.importId === importId) resolution.rejects.push(inFileDuplicate(v.line));
    else if (duplicated.has(ref)) resolution.duplicates += 1;
    else if (!found) {
      claimed.add(ref);
      resolution.inserts.push(v.speculative ?? newSubject(d.catalog, d.keyring, v.subject, v.values));
    } else if (mode === 'insert') {
      duplicated.add(ref);
      resolution.duplicates += 1;
    } else if (found.status === 'destroyed') {
      resolution.rejects.push({ line: v.line, reason: 'subject_destroyed', message: 'the subject was destroyed' });
    } else {
      claimed.add(ref);
      toUpdate.push({ line: v, id: found.id });
    }
  }
  if (toUpdate.length) {
    const keys = await dataKeys(d).loadDataKeys(toUpdate.map((u) => u.id));
    for (const { line, id } of toUpdate) {
      const key = keys.get(id);
      if (!key) {
        resolution.rejects.push({
          line: line.line,
          reason: 'subject_destroyed',
          message: 'the subject has no data key',
        });
        continue;
      }
      const { externalRef, jurisdiction, locale, retentionUntil } = line.subject;
      resolution.updates.push({
        subject: { id, externalRef, jurisdiction, locale, retentionUntil: retentionUntil ?? null },
        fields: encryptFields(d.catalog, d.keyring, id, key, line.values),
      });
    }
  }
  return resolution;
};

type BatchRow = { end_offset: string; next_line: number } & Record<keyof ImportCounts, number>;

const recorded = (row: BatchRow): BatchOutcome => ({
  counts: { imported: row.imported, updated: row.updated, duplicates: row.duplicates, rejected: row.rejected },
  end: { offset: Number(row.end_offset), line: row.next_line },
});

/** The batch starting at `start`, if an earlier attempt committed it. */
export const committedBatch = async (db: Db, importId: string, start: ImportCursor) => {
  const [row] = await rawSql(db)<BatchRow[]>`
    select end_offset, next_line, imported, updated, duplicates, rejected from import_batches
    where import_id = ${importId} and start_offset = ${start.offset}`;
  return row && recorded(row);
};

/**
 * Writes a prepared batch in one transaction: the batch row (keyed by import and start offset), the
 * subjects, their keys and fields, the rejects and the import's counters. A batch an earlier attempt
 * committed is not written again; its recorded counts are returned instead.
 */
export const commitBatch = async (
  d: BatchDeps,
  importId: string,
  mode: ImportMode,
  batch: PreparedBatch,
): Promise<BatchOutcome> => {
  const sql = rawSql(d.db);
  const r = await resolve(d, sql, importId, mode, batch);
  const rejects = [...batch.rejects, ...r.rejects].sort((a, b) => a.line - b.line);
  try {
    const counts = await sql.begin(async (tx) => {
      const imported = await insertNewSubjects(tx, importId, r.inserts);
      await updateSubjects(tx, importId, r.updates);
      if (rejects.length) {
        await tx`
          insert into import_rejects (import_id, line, reason, message)
          select ${importId}, * from unnest(${pgArray(rejects.map((x) => x.line))}::int[], ${pgArray(rejects.map((x) => x.reason))}::text[],
            ${pgArray(rejects.map((x) => x.message))}::text[])`;
      }
      // A subject another import inserted after `resolve` looked is a duplicate here.
      const counts: ImportCounts = {
        imported,
        updated: r.updates.length,
        duplicates: r.duplicates + (r.inserts.length - imported),
        rejected: rejects.length,
      };
      // The batch's key: a concurrent attempt at the same batch waits here, then finds it committed.
      const [claimed] = await tx`
        insert into import_batches (import_id, start_offset, end_offset, first_line, next_line, lines,
          imported, updated, duplicates, rejected)
        values (${importId}, ${batch.start.offset}, ${batch.end.offset}, ${batch.start.line}, ${batch.end.line},
          ${batch.lines}, ${counts.imported}, ${counts.updated}, ${counts.duplicates}, ${counts.rejected})
        on conflict do nothing returning 1`;
      if (!claimed) throw new BatchAlreadyCommitted();
      await tx`
        update subject_imports set imported = imported + ${counts.imported}, updated = updated + ${counts.updated},
          duplicates = duplicates + ${counts.duplicates}, rejected = rejected + ${counts.rejected},
          processed_lines = processed_lines + ${batch.lines},
          processed_bytes = greatest(processed_bytes, ${batch.end.offset}),
          unclassified_fields = array(select distinct f from unnest(unclassified_fields || ${pgArray(batch.unclassified)}::text[]) as f
            order by f limit ${MAX_UNCLASSIFIED_NAMES})
        where id = ${importId}`;
      return counts;
    });
    return { counts, end: batch.end };
  } catch (err) {
    if (!(err instanceof BatchAlreadyCommitted)) throw err;
    const done = await committedBatch(d.db, importId, batch.start);
    if (!done) throw new Error(`batch at offset ${batch.start.offset} of import ${importId} vanished`, { cause: err });
    return done;
  }
};
