import type postgres from 'postgres';
import type { Db } from '../db/client';
import type { Catalog } from '../domain/catalog';
import type { ImportCounts, ImportCursor, ImportMode, ImportReject } from '../domain/subject-import';
import type { Keyring } from '../runtime/keyring';
import { externalRefTombstone } from './destruction-tombstone';
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

/** SQLSTATE classes that blame the data of a row: data exceptions, integrity violations, program limits (a row too big). */
const LINE_DATA_ERROR_CLASSES = new Set(['22', '23', '54']);

/** The SQLSTATE of an error PostgreSQL raised because of a row's data, else undefined. */
export const lineDataError = (err: unknown): string | undefined => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && LINE_DATA_ERROR_CLASSES.has(code.slice(0, 2))
    ? code
    : undefined;
};

interface Existing {
  id: string;
  importId: string | null;
  status: string;
}

/** One line's write: a new subject or an update of an existing one. */
type LineWrite = { line: number } & ({ insert: NewSubject } | { update: SubjectUpdate });

interface Resolution {
  writes: LineWrite[];
  duplicates: number;
  rejects: ImportReject[];
}

const inFileDuplicate = (line: number): ImportReject => ({
  line,
  reason: 'duplicate_in_file',
  message: 'externalRef appears on an earlier line of this import',
});

/** The refs a destroyed subject's tombstone (a keyed hash of its external reference) matches. */
const destroyedRefs = async (d: BatchDeps, sql: postgres.Sql, refs: string[]): Promise<Set<string>> => {
  if (!refs.length) return new Set();
  const byTombstone = new Map(refs.map((ref) => [externalRefTombstone(d.keyring, ref), ref]));
  const rows = await sql<{ external_ref: string }[]>`
    select external_ref from subjects where external_ref = any(${pgArray([...byTombstone.keys()])}::text[])`;
  return new Set(rows.map((r) => byTombstone.get(r.external_ref)!));
};

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
  const destroyed = await destroyedRefs(
    d,
    sql,
    refs.filter((ref) => !existing.has(ref)),
  );
  const claimed = new Set<string>();
  const duplicated = new Set<string>();
  const resolution: Resolution = { writes: [], duplicates: 0, rejects: [] };
  const toUpdate: { line: ValidLine; id: string }[] = [];
  for (const v of batch.valid) {
    const ref = v.subject.externalRef;
    const found = existing.get(ref);
    if (claimed.has(ref) || found?.importId === importId) resolution.rejects.push(inFileDuplicate(v.line));
    else if (destroyed.has(ref))
      resolution.rejects.push({
        line: v.line,
        reason: 'subject_destroyed',
        message: 'a subject with this externalRef was destroyed (its tombstone matches)',
      });
    else if (duplicated.has(ref)) resolution.duplicates += 1;
    else if (!found) {
      claimed.add(ref);
      resolution.writes.push({
        line: v.line,
        insert: v.speculative ?? newSubject(d.catalog, d.keyring, v.subject, v.values),
      });
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
      resolution.writes.push({
        line: line.line,
        update: {
          subject: { id, externalRef, jurisdiction, locale, retentionUntil: retentionUntil ?? null },
          fields: encryptFields(d.catalog, d.keyring, id, key, line.values),
        },
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

/** Writes these lines' subjects; returns how many new subjects were inserted (the rest were taken meanwhile). */
const writeLines = async (tx: postgres.TransactionSql, importId: string, writes: readonly LineWrite[]) => {
  const imported = await insertNewSubjects(
    tx,
    importId,
    writes.flatMap((w) => ('insert' in w ? [w.insert] : [])),
  );
  await updateSubjects(
    tx,
    importId,
    writes.flatMap((w) => ('update' in w ? [w.update] : [])),
  );
  return imported;
};

/**
 * Writes the lines under a savepoint. When PostgreSQL refuses a value (a data error), the savepoint is
 * rolled back and each half is tried on its own, down to the single lines to blame, which are rejected;
 * every other line is written. A clean batch costs one savepoint.
 */
const writeIsolating = async (
  tx: postgres.TransactionSql,
  importId: string,
  writes: readonly LineWrite[],
): Promise<{ imported: number; refused: ImportReject[] }> => {
  if (writes.length === 0) return { imported: 0, refused: [] };
  try {
    return { imported: await tx.savepoint((sp) => writeLines(sp, importId, writes)), refused: [] };
  } catch (err) {
    const sqlState = lineDataError(err);
    if (!sqlState) throw err;
    if (writes.length === 1) {
      const message = `the database refused a value on this line (SQLSTATE ${sqlState})`;
      return { imported: 0, refused: [{ line: writes[0]!.line, reason: 'rejected_by_database', message }] };
    }
    const half = Math.ceil(writes.length / 2);
    const first = await writeIsolating(tx, importId, writes.slice(0, half));
    const second = await writeIsolating(tx, importId, writes.slice(half));
    return { imported: first.imported + second.imported, refused: [...first.refused, ...second.refused] };
  }
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
  try {
    const counts = await sql.begin(async (tx) => {
      // Claimed first: a concurrent attempt at the same batch waits here, then finds it committed.
      const [claimed] = await tx`
        insert into import_batches (import_id, start_offset, end_offset, first_line, next_line, lines,
          imported, updated, duplicates, rejected)
        values (${importId}, ${batch.start.offset}, ${batch.end.offset}, ${batch.start.line}, ${batch.end.line},
          ${batch.lines}, 0, 0, 0, 0)
        on conflict do nothing returning 1`;
      if (!claimed) throw new BatchAlreadyCommitted();
      const written = await writeIsolating(tx, importId, r.writes);
      const rejects = [...batch.rejects, ...r.rejects, ...written.refused].sort((a, b) => a.line - b.line);
      if (rejects.length) {
        await tx`
          insert into import_rejects (import_id, line, reason, message)
          select ${importId}, * from unnest(${pgArray(rejects.map((x) => x.line))}::int[], ${pgArray(rejects.map((x) => x.reason))}::text[],
            ${pgArray(rejects.map((x) => x.message))}::text[])`;
      }
      const inserts = r.writes.filter((w) => 'insert' in w).length;
      const updates = r.writes.length - inserts;
      const refusedInserts = written.refused.filter((x) =>
        r.writes.some((w) => w.line === x.line && 'insert' in w),
      ).length;
      // A subject another import inserted after `resolve` looked is a duplicate here.
      const counts: ImportCounts = {
        imported: written.imported,
        updated: updates - (written.refused.length - refusedInserts),
        duplicates: r.duplicates + (inserts - refusedInserts - written.imported),
        rejected: rejects.length,
      };
      await tx`
        update import_batches set imported = ${counts.imported}, updated = ${counts.updated},
          duplicates = ${counts.duplicates}, rejected = ${counts.rejected}
        where import_id = ${importId} and start_offset = ${batch.start.offset}`;
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
