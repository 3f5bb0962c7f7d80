import { fileURLToPath } from 'node:url';
import type { DataConverter } from '@temporalio/common';
import {
  Worker,
  bundleWorkflowCode,
  type NativeConnection,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import type { Activities } from '../activities';
import { failureConverterPath } from './payload-codec';
import { workflowPreloadModules } from './workflow-preload';

export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/**
 * The workflow bundle every worker runs: it carries the failure converter (or workflow failures leave the codec's
 * reach) and loads zod and `domain/` once per worker thread rather than once per run (runtime/workflow-preload.ts).
 */
export const bundleWorkflows = (): Promise<WorkflowBundleWithSourceMap> =>
  bundleWorkflowCode({ workflowsPath, failureConverterPath, preloadModules: workflowPreloadModules() });

export interface WorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: Activities;
  dataConverter: DataConverter;
  workflowBundle?: WorkflowBundleWithSourceMap;
  /** Activities run at once (the SDK's default, 100, when unset). */
  maxConcurrentActivityTaskExecutions?: number;
  /** Workflow runs kept in memory (the SDK's default, from the heap size, when unset). */
  maxCachedWorkflows?: number;
}

/** One worker registers every workflow and activity; `shutdownSignals` default to SIGINT/SIGTERM. */
export const createWorker = async (o: WorkerOptions): Promise<Worker> =>
  Worker.create({
    connection: o.connection,
    namespace: o.namespace,
    taskQueue: o.taskQueue,
    activities: o.activities,
    dataConverter: o.dataConverter,
    maxConcurrentActivityTaskExecutions: o.maxConcurrentActivityTaskExecutions,
    maxCachedWorkflows: o.maxCachedWorkflows,
    // A worker killed without shutting down leaves its sticky queue behind: the next task of each cached workflow
    // (an escalation timer firing) waits this long before any other worker may take it (the SDK's default is 10 s).
    stickyQueueScheduleToStartTimeout: '2 seconds',
    workflowBundle: o.workflowBundle ?? (await bundleWorkflows()),
  });
