import { access } from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { and, eq } from 'drizzle-orm';
import type { Db } from '../db/client';
import { subjectImports } from '../db/schema';
import type { Catalog } from '../domain/catalog';
import { importWorkflowId } from '../domain/ids';
import {
  addCounts,
  zeroCounts,
  type ImportCounts,
  type ImportCursor,
  type ImportMode,
  type ImportReport,
  type ImportStatus,
} from '../domain/subject-import';
import type { Keyring } from '../runtime/keyring';
import { appendAudit } from './audit';
import { removeStagedFile, stagedFilePath, StagedFileReader } from './import-staging';
import { commitBatch, committedBatch, type BatchDeps, type BatchOutcome } from './subject-import-batch';
import type { PreparedBatch } from './subject-prepare';
import { createPreparePool, defaultPrepareThreads, type PreparePool } from './subject-prepare-pool';

export interface ImportDeps {
  db: Db;
  keyring: Keyring;
  catalog: Catalog;
  /** Where uploads are staged (`importStagingDir(config)`), shared with the API. */
  stagingDir: string;
  /** Threads that parse and encrypt; 0 prepares on the main thread. Default: cores − 1. */
  prepareThreads?: number;
}

export interface BeginImportInput {
  importId: string;
  mode: ImportMode;
  requestedBy: string;
  totalLines: number;
  stagedBytes: number;
}

export interface ImportBatchesInput {
  importId: string;
  mode: ImportMode;
  cursor: ImportCursor;
  batchLines: number;
  /** Stop after this many batches (the workflow calls again). */
  maxBatches: number;
}

/** Heartbeat details: where a retried attempt resumes, and what this call has counted so far. */
export interface ImportHeartbeat {
  cursor: ImportCursor;
  counts: ImportCounts;
  batches: number;
}

export interface ImportBatchesResult extends ImportHeartbeat {
  done: boolean;
}

export interface FinishImportInput {
  importId: string;
  status: Exclude<ImportStatus, 'running'>;
  /** A failure type such as StagedFileMissing: never a message that could quote data. */
  error?: string;
}

type Step = { kind: 'end' } | { kind: 'committed'; outcome: BatchOutcome } | { kind: 'prepared'; batch: PreparedBatch };

const stagedFileMissing = (importId: string) =>
  ApplicationFailure.nonRetryable(`the staged file of import ${importId} is missing`, 'StagedFileMissing');

const SQLSTATE = /^[0-9A-Z]{5}$/;

/**
 * The failure an import activity reports. A PostgreSQL (or drizzle) error's message, detail and
 * parameters can quote a value from an input line, and the worker logs failures with their stack:
 * only the SQLSTATE leaves. Every other error passes as it is (their messages carry IDs and codes).
 */
export const withoutValues = (err: unknown): unknown => {
  if (err instanceof ApplicationFailure || err instanceof CancelledFailure || !(err instanceof Error)) return err;
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as Error & { code?: unknown }).code;
    if (e.name === 'PostgresError' || (typeof code === 'string' && SQLSTATE.test(code))) {
      return ApplicationFailure.retryable(`PostgreSQL refused a statement (SQLSTATE ${String(code)})`, 'DatabaseError');
    }
    if (e.name === 'DrizzleQueryError' && !(e.cause instanceof Error)) {
      return ApplicationFailure.retryable('a database query failed', 'DatabaseError');
    }
  }
  return err;
};

/** Runs an activity body, reporting its failure without values (see withoutValues). */
const reported = async <T>(body: () => Promise<T>): Promise<T> => {
  try {
    return await body();
  } catch (err) {
    throw withoutValues(err);
  }
};

export const importActivities = (d: ImportDeps) => {
  const { catalog, stagingDir } = d;
  const batchDeps: BatchDeps = { db: d.db, keyring: d.keyring, catalog };
  let pool: PreparePool | undefined;
  // Threads start on the first import and stay (unreferenced while idle) for the next.
  const preparePool = () => (pool ??= createPreparePool(batchDeps, d.prepareThreads ?? defaultPrepareThreads()));

  return {
    /** Records the import (idempotent) and audits its start. */
    beginSubjectImport: (input: BeginImportInput): Promise<void> => reported(() => begin(input)),

    /**
     * Imports up to `maxBatches` batches from the cursor, each committed in its own transaction, and
     * heartbeats the byte offset after each and on a timer while one is in flight (a batch can outlast
     * the heartbeat timeout). A retry resumes from the last heartbeat; batches committed after it are
     * recognised by their start offset and counted from their recorded row.
     */
    importSubjectBatches: (input: ImportBatchesInput): Promise<ImportBatchesResult> =>
      reported(() => importBatches(input)),

    /** Closes the import (idempotent), audits the final counts and deletes the staged plaintext. */
    finishSubjectImport: (input: FinishImportInput): Promise<ImportReport> => reported(() => finish(input)),
  };

  async function begin(input: BeginImportInput): Promise<void> {
    await access(stagedFilePath(stagingDir, input.importId)).catch(() => {
      throw stagedFileMissing(input.importId);
    });
    await d.db
      .insert(subjectImports)
      .values({
        id: input.importId,
        mode: input.mode,
        requestedBy: input.requestedBy,
        totalLines: input.totalLines,
        stagedBytes: input.stagedBytes,
      })
      .onConflictDoNothing();
    const execution = Context.current().info.workflowExecution;
    await appendAudit(d.db, {
      actor: input.requestedBy,
      action: 'subject-import.started',
      targetType: 'subject-import',
      targetId: input.importId,
      workflowId: execution?.workflowId,
      runId: execution?.runId,
      details: { mode: input.mode, totalLines: input.totalLines, stagedBytes: input.stagedBytes },
      idempotencyKey: `${importWorkflowId(input.importId)}:started`,
    });
  }

  async function importBatches(input: ImportBatchesInput): Promise<ImportBatchesResult> {
    const ctx = Context.current();
    const resumed = ctx.info.heartbeatDetails as ImportHeartbeat | undefined;
    let state: ImportHeartbeat =
      resumed && resumed.cursor.offset >= input.cursor.offset
        ? resumed
        : { cursor: input.cursor, counts: zeroCounts(), batches: 0 };
    const reader = await StagedFileReader.open(stagedFilePath(stagingDir, input.importId), state.cursor).catch(
      (err: NodeJS.ErrnoException) => {
        throw err.code === 'ENOENT' ? stagedFileMissing(input.importId) : err;
      },
    );
    // Read ahead: while one batch commits, the next ones are parsed and encrypted in the pool.
    const pool = preparePool();
    const queue: Promise<Step>[] = [];
    let readFrom: ImportCursor | undefined = state.cursor;
    let scheduled = state.batches;
    const readNext = async (): Promise<void> => {
      const cursor = readFrom!;
      scheduled += 1;
      const done = await committedBatch(d.db, input.importId, cursor);
      if (done) {
        reader.seek(done.end);
        readFrom = done.end;
        queue.push(Promise.resolve({ kind: 'committed', outcome: done }));
        return;
      }
      const lines = await reader.nextBatch(input.batchLines);
      readFrom = lines.atEnd ? undefined : lines.end;
      if (lines.lines.length === 0) {
        queue.push(Promise.resolve({ kind: 'end' }));
        return;
      }
      const prepared = pool.prepare(lines);
      prepared.catch(() => {});
      queue.push(prepared.then((batch) => ({ kind: 'prepared', batch })));
    };

    const heartbeatTimeoutMs = ctx.info.heartbeatTimeoutMs ?? 0;
    const beating =
      heartbeatTimeoutMs > 0
        ? setInterval(() => ctx.heartbeat(state), Math.max(50, heartbeatTimeoutMs / 4))
        : undefined;
    let done = false;
    try {
      while (!done) {
        while (readFrom && scheduled < input.maxBatches && queue.length <= pool.size) await readNext();
        const next = queue.shift();
        if (!next) break;
        const current = await next;
        if (current.kind === 'end') {
          done = true;
          break;
        }
        const outcome =
          current.kind === 'committed'
            ? current.outcome
            : await commitBatch(batchDeps, input.importId, input.mode, current.batch);
        state = { cursor: outcome.end, counts: addCounts(state.counts, outcome.counts), batches: state.batches + 1 };
        ctx.heartbeat(state);
        done = current.kind === 'prepared' && current.batch.atEnd;
        if (ctx.cancellationSignal.aborted) throw new CancelledFailure('the import was cancelled');
      }
    } finally {
      clearInterval(beating);
      await Promise.allSettled(queue);
      await reader.close();
    }
    return { ...state, done };
  }

  async function finish(input: FinishImportInput): Promise<ImportReport> {
    await d.db
      .update(subjectImports)
      .set({ status: input.status, error: input.error ?? null, finishedAt: new Date() })
      .where(and(eq(subjectImports.id, input.importId), eq(subjectImports.status, 'running')));
    const [row] = await d.db.select().from(subjectImports).where(eq(subjectImports.id, input.importId));
    // No row: beginning failed (say, the staged file was missing). Close with that cause, not another.
    const report: ImportReport = row
      ? {
          importId: row.id,
          status: row.status,
          total: row.totalLines,
          imported: row.imported,
          updated: row.updated,
          duplicates: row.duplicates,
          rejected: row.rejected,
          unclassifiedFields: row.unclassifiedFields,
        }
      : { importId: input.importId, status: input.status, total: 0, ...zeroCounts(), unclassifiedFields: [] };
    const execution = Context.current().info.workflowExecution;
    await appendAudit(d.db, {
      actor: 'system',
      action: `subject-import.${report.status}`,
      targetType: 'subject-import',
      targetId: input.importId,
      workflowId: execution?.workflowId,
      runId: execution?.runId,
      details: auditedReport(report, row?.requestedBy, row ? row.error : (input.error ?? null)),
      idempotencyKey: `${importWorkflowId(input.importId)}:finished`,
    });
    await removeStagedFile(stagingDir, input.importId);
    return report;
  }
};

/**
 * What the immutable audit keeps of a closed import: counts only. Unclassified field names are chosen by
 * whoever wrote the file and may be data; they stay in the import's report, which can be erased.
 */
export const auditedReport = (report: ImportReport, requestedBy: string | undefined, error: string | null) => {
  const { unclassifiedFields, ...counts } = report;
  return { ...counts, unclassifiedFieldCount: unclassifiedFields.length, requestedBy, error };
};
