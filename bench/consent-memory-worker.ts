/**
 * The worker process of `bench/consent-memory.ts`: a production worker (createWorker: the workflow cache at its
 * default size unless the bench sets one, the bundle built at start as in production; activity concurrency
 * lowered) and the real
 * activities, in a process of its own so its resident memory can be read from /proc. It answers the parent
 * over IPC: `status` (the worker's counters), `gc` (collect the main heap, then report it), `stop`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { createActivities } from '../activities';
import { connect } from '../db/client';
import { defaultCatalog } from '../domain/catalog';
import { loadConfig } from '../runtime/config';
import { parseKeyring } from '../runtime/keyring';
import { createLogger } from '../runtime/logger';
import { dataConverterFor } from '../runtime/payload-codec';
import { createWorker } from '../runtime/worker';

export interface WorkerReport {
  maxCachedWorkflows: number;
  numCachedWorkflows: number;
  inFlightActivations: number;
  inFlightActivities: number;
  /** The main thread's V8 heap (the workflow sandbox runs in a thread of its own, counted only in RSS). */
  heapUsedBytes: number;
}

export type ParentMessage = { type: 'status' } | { type: 'gc' } | { type: 'stop' };
export type ChildMessage = { type: 'ready' | 'status'; report: WorkerReport } | { type: 'error'; message: string };

const send = (m: ChildMessage) => process.send!(m);

const main = async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const env = process.env;
  const keyring = parseKeyring(JSON.parse(env.BENCH_KEYRING!), 'bench');
  const config = loadConfig({ CUSTODIAN_NOTIFY_CHANNEL: 'log', LOG_LEVEL: 'warn' });
  const database = connect(env.BENCH_DATABASE!, { applicationName: 'custodian-bench-worker' });
  const connection = await NativeConnection.connect({ address: env.BENCH_TEMPORAL_ADDRESS! });
  const worker = await createWorker({
    connection,
    namespace: 'default',
    taskQueue: env.BENCH_TASK_QUEUE!,
    activities: createActivities({
      database,
      keyring,
      catalog: defaultCatalog,
      stagingDir: mkdtempSync(join(tmpdir(), 'custodian-bench-staging-')),
      config,
      logger: createLogger('warn'),
      clock: () => new Date(),
    }),
    dataConverter: dataConverterFor(keyring),
    maxConcurrentActivityTaskExecutions: Number(env.BENCH_ACTIVITY_CONCURRENCY),
    maxCachedWorkflows: env.BENCH_MAX_CACHED_WORKFLOWS ? Number(env.BENCH_MAX_CACHED_WORKFLOWS) : undefined,
  });
  const report = (): WorkerReport => {
    const s = worker.getStatus();
    return {
      maxCachedWorkflows: worker.options.maxCachedWorkflows,
      numCachedWorkflows: s.numCachedWorkflows,
      inFlightActivations: s.numInFlightWorkflowActivations,
      inFlightActivities: s.numInFlightActivities,
      heapUsedBytes: process.memoryUsage().heapUsed,
    };
  };
  const running = worker.run();
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'status') send({ type: 'status', report: report() });
    if (m.type === 'gc') {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      gc?.();
      send({ type: 'status', report: report() });
    }
    if (m.type === 'stop') worker.shutdown();
  });
  send({ type: 'ready', report: report() });
  await running;
  await connection.close();
  await database.close();
  process.disconnect?.();
};

main().catch((err: unknown) => {
  send({ type: 'error', message: (err as Error).stack ?? String(err) });
  process.exitCode = 1;
  process.disconnect?.();
});
