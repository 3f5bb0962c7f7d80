import { serve, type ServerType } from '@hono/node-server';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createApp } from '../api/app';
import type { Database } from '../db/client';
import type { Config } from './config';
import type { Keyring } from './keyring';
import type { Logger } from './logger';
import { dataConverterFor } from './payload-codec';
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

export const startApi = async (
  deps: { database: Database; client: Client; logger: Logger; keyring: Keyring; stagingDir: string },
  config: Config,
): Promise<RunningApi> => {
  const { app } = createApp({
    db: deps.database,
    temporal: deps.client,
    logger: deps.logger,
    bodyLimitBytes: config.CUSTODIAN_BODY_LIMIT_BYTES,
    subjects: { keyring: deps.keyring, stagingDir: deps.stagingDir, taskQueue: config.TEMPORAL_TASK_QUEUE },
  });
  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST }, () => resolve(s));
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

export const startWorker = async (
  address: string,
  deps: { database: Database; keyring: Keyring; stagingDir: string },
  config: Config,
): Promise<RunningWorker> => {
  const connection = await NativeConnection.connect({ address });
  const worker = await createWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    activities: createActivities({ db: deps.database.db, keyring: deps.keyring, stagingDir: deps.stagingDir }),
    dataConverter: dataConverterFor(deps.keyring),
  });
  const done = worker.run().finally(() => connection.close());
  return {
    worker,
    done,
    stop: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
};
