import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { keyRotationWorkflowId, qualityCheckWorkflowId } from '../../domain/ids';
import { QualityThresholds } from '../../domain/quality';
import { keyRotation, qualityCheck } from '../../workflows';
import { insertSubjects } from '../helpers/campaign-subjects';
import type { Scenario, ScenarioContext } from './scenarios';

const settled = async (handle: WorkflowHandle): Promise<WorkflowHandle> => {
  await handle.result().catch(() => {});
  return handle;
};

const check = async (
  { client, taskQueue, database, keyring }: ScenarioContext,
  thresholds?: QualityThresholds,
  pagesPerRun = 1,
) => {
  await insertSubjects(database.db, keyring, 3);
  const checkId = randomUUID();
  return settled(
    await client.workflow.start(qualityCheck, {
      taskQueue,
      workflowId: qualityCheckWorkflowId(checkId),
      args: [{ checkId, requestedBy: 'recorded', pageSize: 2, pagesPerRun, ...(thresholds ? { thresholds } : {}) }],
    }),
  );
};

/** The data-quality check and key rotation (both continue as new after a page or two). */
export const qualityScenarios: Record<string, Record<string, Scenario>> = {
  qualityCheck: {
    /** Subjects without names, phones or ID numbers: completeness breached, an alert and (with a policy) an incident. */
    breached: (ctx) => check(ctx),
    /** Thresholds that nothing breaks: a report and no alert. */
    clean: (ctx) =>
      check(
        ctx,
        QualityThresholds.parse({
          completeness: {},
          maxInvalidRatio: 1,
          maxDuplicateRatio: 1,
          maxStaleRatio: 1,
          maxInconsistencies: 1_000_000,
        }),
        // One run: the start, every page and the report in one history.
        1_000,
      ),
  },
  keyRotation: {
    /** A new KEK version, every key re-wrapped in batches of two, verified, the older versions retired. */
    rotated: (ctx) => rotate(ctx, 2),
    /** The same in one run: the new version, the re-wrap batches, the verify batches and the retirement. */
    'one-run': (ctx) => rotate(ctx, 1_000),
  },
};

const rotate = async ({ client, taskQueue, database, keyring }: ScenarioContext, batchesPerRun: number) => {
  await insertSubjects(database.db, keyring, 3);
  const rotationId = randomUUID();
  return settled(
    await client.workflow.start(keyRotation, {
      taskQueue,
      workflowId: keyRotationWorkflowId(rotationId),
      args: [{ rotationId, requestedBy: 'recorded', batchSize: 2, batchesPerRun }],
    }),
  );
};
