import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { stageImportFile } from '../../activities/import-staging';
import type { Database } from '../../db/client';
import { importWorkflowId, selfCheckWorkflowId } from '../../domain/ids';
import type { Keyring } from '../../runtime/keyring';
import { selfCheck, subjectImport } from '../../workflows';

export interface ScenarioContext {
  client: Client;
  taskQueue: string;
  database: Database;
  keyring: Keyring;
  stagingDir: string;
}

/**
 * One recorded run per workflow type exported from workflows/: `npm run replay:record` runs these
 * against a real dev server and saves their histories; the replay test fails for a type without one.
 */
export const scenarios: Record<string, (ctx: ScenarioContext) => Promise<WorkflowHandle>> = {
  selfCheck: async ({ client, taskQueue }) => {
    const checkId = randomUUID();
    const handle = await client.workflow.start(selfCheck, {
      taskQueue,
      workflowId: selfCheckWorkflowId(checkId),
      args: [{ checkId, token: 'recorded' }],
    });
    await handle.result();
    return handle;
  },
  subjectImport: async ({ client, taskQueue, stagingDir }) => {
    const importId = randomUUID();
    const example = new URL('../../examples/subjects.ndjson', import.meta.url).pathname;
    const staged = await stageImportFile(stagingDir, importId, createReadStream(example), { maxBytes: 1e6 });
    const handle = await client.workflow.start(subjectImport, {
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
        },
      ],
    });
    await handle.result();
    return handle;
  },
};
