import type { Dirent } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { and, eq } from 'drizzle-orm';
import type { Db } from '../db/client';
import { subjectImports } from '../db/schema';
import { importWorkflowId } from '../domain/ids';
import { appendAudit } from './audit';
import { removeStagedFile } from './import-staging';

export interface ImportSweepDeps {
  db: Db;
  stagingDir: string;
  /** A Temporal client on the namespace the import workflows run in. */
  client: Client;
  /** Grace period: a `.partial` upload, or a staged file no import claims, is left alone until this old. */
  olderThanMs: number;
  now?: () => number;
}

export interface ImportSweepResult {
  partialsRemoved: number;
  stagedRemoved: number;
  /** Imports marked failed because their workflow closed without finishing them, with the recorded error. */
  closed: { importId: string; error: string }[];
}

type WorkflowState = 'running' | 'not_found' | 'terminated' | 'timed_out' | 'failed' | 'cancelled' | 'completed';

const STAGED = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.ndjson$/;
const PARTIAL = /\.ndjson\.partial$/;

const workflowState = async (client: Client, importId: string): Promise<WorkflowState> => {
  try {
    // The latest run of the chain: a continued-as-new import is running in its newest run.
    const { status } = await client.workflow.getHandle(importWorkflowId(importId)).describe();
    switch (status.name) {
      case 'RUNNING':
      case 'CONTINUED_AS_NEW':
        return 'running';
      case 'TERMINATED':
        return 'terminated';
      case 'TIMED_OUT':
        return 'timed_out';
      case 'CANCELLED':
        return 'cancelled';
      case 'COMPLETED':
        return 'completed';
      default:
        return 'failed';
    }
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return 'not_found';
    throw err;
  }
};

/** The error recorded on an import whose workflow closed (or vanished) while the import was still running. */
const closedWithout = (state: Exclude<WorkflowState, 'running'>): string =>
  state === 'terminated' || state === 'timed_out' ? state : `workflow_${state}`;

/**
 * Marks a running import failed (as the system, audited, counts only) when its workflow closed without
 * finishing it. The audit entry takes the key the workflow's own close would have used, so there is one.
 */
const markClosed = async (db: Db, importId: string, error: string): Promise<boolean> =>
  db.transaction(async (tx) => {
    const [row] = await tx
      .update(subjectImports)
      .set({ status: 'failed', error, finishedAt: new Date() })
      .where(and(eq(subjectImports.id, importId), eq(subjectImports.status, 'running')))
      .returning();
    if (!row) return false;
    await appendAudit(tx, {
      actor: 'system',
      action: 'subject-import.failed',
      targetType: 'subject-import',
      targetId: importId,
      workflowId: importWorkflowId(importId),
      details: {
        status: row.status,
        error,
        total: row.totalLines,
        imported: row.imported,
        updated: row.updated,
        duplicates: row.duplicates,
        rejected: row.rejected,
        unclassifiedFieldCount: row.unclassifiedFields.length,
        requestedBy: row.requestedBy,
        closedBy: 'staging-sweep',
      },
      idempotencyKey: `${importWorkflowId(importId)}:finished`,
    });
    return true;
  });

const olderThan = async (path: string, cutoff: number): Promise<boolean> => {
  const info = await stat(path).catch(() => undefined);
  return info !== undefined && info.mtimeMs < cutoff;
};

/**
 * Removes plaintext the import left behind, and closes imports whose workflow ended without closing them:
 * - `.partial` uploads older than the grace period (an upload cut off by a kill or a dropped connection);
 * - staged files of imports that are closed, or whose workflow is closed or unknown;
 * - staged files no import row claims, once older than the grace period and without a running workflow;
 * - running imports whose workflow was terminated, timed out or is gone are marked `failed` with the error
 *   `terminated`, `timed_out` or `workflow_<state>`, audited as the system.
 * Run it at start-up and on a timer; it is idempotent and safe beside running imports.
 */
export const sweepImportStaging = async (d: ImportSweepDeps): Promise<ImportSweepResult> => {
  const cutoff = (d.now?.() ?? Date.now()) - d.olderThanMs;
  const result: ImportSweepResult = { partialsRemoved: 0, stagedRemoved: 0, closed: [] };

  const running = await d.db
    .select({ id: subjectImports.id })
    .from(subjectImports)
    .where(eq(subjectImports.status, 'running'));
  for (const { id } of running) {
    const state = await workflowState(d.client, id);
    if (state === 'running') continue;
    const error = closedWithout(state);
    if (await markClosed(d.db, id, error)) result.closed.push({ importId: id, error });
  }

  const entries: Dirent[] = await readdir(d.stagingDir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const path = join(d.stagingDir, entry.name);
    if (PARTIAL.test(entry.name)) {
      if (await olderThan(path, cutoff)) {
        await rm(path, { force: true });
        result.partialsRemoved += 1;
      }
      continue;
    }
    const importId = STAGED.exec(entry.name)?.[1];
    if (!importId) continue;
    const [row] = await d.db
      .select({ status: subjectImports.status })
      .from(subjectImports)
      .where(eq(subjectImports.id, importId));
    if (row?.status === 'running') continue;
    if (!row) {
      // Staged, its workflow not yet begun (or never started): only a stale file without a live workflow goes.
      if ((await workflowState(d.client, importId)) === 'running' || !(await olderThan(path, cutoff))) continue;
    }
    await removeStagedFile(d.stagingDir, importId);
    result.stagedRemoved += 1;
  }
  return result;
};
