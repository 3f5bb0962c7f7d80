import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { stageImportFile } from '../../activities/import-staging';
import type { Database } from '../../db/client';
import { importWorkflowId, selfCheckWorkflowId } from '../../domain/ids';
import type { SubjectImportInput } from '../../domain/subject-import';
import type { Keyring } from '../../runtime/keyring';
import { selfCheck, subjectImport } from '../../workflows';
import { importProgressQuery } from '../../workflows/subject-import';
import { writeSubjectFile } from '../helpers/subject-files';
import { waitFor } from '../helpers/wait';

export interface ScenarioContext {
  client: Client;
  taskQueue: string;
  database: Database;
  keyring: Keyring;
  stagingDir: string;
}

/** Runs one branch of a workflow to its end and returns the handle of the run whose history is recorded. */
export type Scenario = (ctx: ScenarioContext) => Promise<WorkflowHandle>;

const example = new URL('../../examples/subjects.ndjson', import.meta.url).pathname;

const settled = async (handle: WorkflowHandle): Promise<WorkflowHandle> => {
  await handle.result().catch(() => {});
  return handle;
};

/** Stages `file` (unless `staged` is false) and starts an import of it with the given options. */
const startImport = async (
  { client, taskQueue, stagingDir }: ScenarioContext,
  options: Partial<SubjectImportInput> & { file?: string; staged?: boolean } = {},
) => {
  const { file = example, staged: stage = true, ...input } = options;
  const importId = randomUUID();
  const staged = stage
    ? await stageImportFile(stagingDir, importId, createReadStream(file), { maxBytes: 1e9 })
    : { lines: 5, bytes: 1 };
  return client.workflow.start(subjectImport, {
    taskQueue,
    workflowId: importWorkflowId(importId),
    args: [
      {
        importId,
        mode: 'insert',
        requestedBy: 'recorded',
        totalLines: staged.lines,
        stagedBytes: staged.bytes,
        batchLines: 2,
        batchesPerActivity: 1,
        ...input,
      },
    ],
  });
};

/**
 * Named scenarios per workflow type exported from workflows/: one per branch of the workflow (happy
 * path, continue-as-new, cancellation, each failure path). `npm run replay:record` runs them on a real
 * dev server and saves `histories/<type>/<scenario>.json`; the replay test fails when an exported type
 * has no scenario or a declared scenario has no history.
 */
export const scenarios: Record<string, Record<string, Scenario>> = {
  selfCheck: {
    'round-trip': async ({ client, taskQueue }) => {
      const checkId = randomUUID();
      return settled(
        await client.workflow.start(selfCheck, {
          taskQueue,
          workflowId: selfCheckWorkflowId(checkId),
          args: [{ checkId, token: 'recorded' }],
        }),
      );
    },
  },
  subjectImport: {
    /** Begin, batches to the end, finish: a single run. */
    completed: async (ctx) => settled(await startImport(ctx)),
    /** The first run of a chain: it stops after `batchesPerRun` batches and continues as new. */
    'continue-as-new': async (ctx) => {
      const handle = await startImport(ctx, { batchesPerRun: 1 });
      await handle.result();
      return ctx.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId);
    },
    /** The last run of such a chain: it resumes from the cursor without beginning again, and finishes. */
    'resumed-after-continue-as-new': async (ctx) => settled(await startImport(ctx, { batchesPerRun: 2 })),
    /** Cancelled while batches run: the batch activity stops at a boundary, the import closes as cancelled. */
    cancelled: async (ctx) => {
      const file = join(ctx.stagingDir, `cancel-${randomUUID()}.src`);
      await writeSubjectFile(file, 5_000, { prefix: `RC${Date.now()}` });
      const handle = await startImport(ctx, { file, batchLines: 50, batchesPerActivity: 2 });
      await waitFor(
        async () => ((await handle.query(importProgressQuery)).counts.imported > 0 ? true : undefined),
        'the first batch',
      );
      await handle.cancel();
      return settled(handle);
    },
    /** Beginning fails (the staged file is missing): closed as failed with that cause. */
    'begin-fails': async (ctx) => settled(await startImport(ctx, { staged: false })),
    /** A batch fails without retry (the staged file vanished after beginning): closed as failed. */
    'batches-fail': async (ctx) =>
      settled(
        await startImport(ctx, {
          staged: false,
          resume: { cursor: { offset: 0, line: 1 }, counts: { imported: 0, updated: 0, duplicates: 0, rejected: 0 } },
        }),
      ),
  },
};
