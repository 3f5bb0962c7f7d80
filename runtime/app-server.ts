import { serve, type ServerType } from '@hono/node-server';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { loadKekVersions } from '../activities/key-rotation-keks';
import { upsertSchedules } from '../activities/schedules';
import { createApp } from '../api/app';
import type { Config } from './config';
import type { Keyring } from './keyring';
import { dataConverterFor } from './payload-codec';
import type { Services } from './services';
import { createWorker } from './worker';

export interface TemporalClients {
  client: Client;
  close(): Promise<void>;
}

export const connectClient = async (address: string, config: Config, keyring: Keyring): Promise<TemporalClients> => {
  const connection = await Connection.connect({ address });
  const client = new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    dataConverter: dataConverterFor(keyring),
  });
  return { client, close: () => connection.close() };
};

export interface RunningApi {
  url: string;
  close(): Promise<void>;
}

export const startApi = async (services: Services): Promise<RunningApi> => {
  const { config } = services;
  const app = createApp(services);
  const server: ServerType = await new Promise((resolve, reject) => {
    const requestTimeout = config.CUSTODIAN_REQUEST_TIMEOUT_MS;
    const s = serve(
      {
        fetch: app.fetch,
        port: config.PORT,
        hostname: config.HOST,
        // Node ends any request after 5 minutes by default, which cuts a large import upload short.
        serverOptions: { requestTimeout, connectionsCheckingInterval: Math.min(30_000, requestTimeout / 4) },
      },
      () => resolve(s),
    );
    s.once('error', reject);
  });
  return {
    url: `http://${config.HOST}:${config.PORT}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // In-flight requests finish; idle keep-alive sockets would otherwise hold close() open.
        if ('closeIdleConnections' in server) server.closeIdleConnections();
      }),
  };
};

export interface RunningWorker {
  worker: Worker;
  /** Resolves when the worker has drained and stopped. */
  done: Promise<void>;
  stop(): Promise<void>;
}

export const startWorker = async (address: string, services: Services): Promise<RunningWorker> => {
  const { config, keyring } = services;
  // New data keys are wrapped under the newest KEK version a key rotation made, not the configured one.
  await loadKekVersions(services.database.db, keyring);
  const connection = await NativeConnection.connect({ address });
  const worker = await createWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    activities: createActivities(services),
    dataConverter: dataConverterFor(keyring),
    maxCachedWorkflows: config.CUSTODIAN_WORKER_MAX_CACHED_WORKFLOWS,
  });
  const done = worker.run().finally(() => connection.close());
  const stop = async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await done;
  };
  if (config.CUSTODIAN_SCHEDULES_ENABLED) {
    // Idempotent, so every worker does it: the declared recurring reviews exist in Temporal once one has started.
    const outcomes = await upsertSchedules(
      { client: services.temporal, db: services.database.db },
      services.schedules,
    ).catch(async (err: unknown) => {
      await stop();
      throw err;
    });
    services.logger.info({ schedules: outcomes.map((o) => `${o.scheduleId}: ${o.outcome}`) }, 'schedules upserted');
  }
  return { worker, done, stop };
};
