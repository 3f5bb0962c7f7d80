import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Database } from '../../db/client';
import { selfCheckWorkflowId } from '../../domain/ids';
import type { Keyring } from '../../runtime/keyring';
import { selfCheck } from '../../workflows';

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
};
