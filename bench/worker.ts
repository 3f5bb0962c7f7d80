import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { createActivities } from '../activities';
import type { Database } from '../db/client';
import { defaultCatalog } from '../domain/catalog';
import { loadConfig, type Config } from '../runtime/config';
import type { Keyring } from '../runtime/keyring';
import { createLogger, type Logger } from '../runtime/logger';
import { dataConverterFor } from '../runtime/payload-codec';
import { createWorker } from '../runtime/worker';

export interface BenchWorker {
  client: Client;
  worker: Worker;
  taskQueue: string;
  close(): Promise<void>;
}

/**
 * A client and a worker wired as in production (every workflow and activity, the payload codec) on a fresh task
 * queue `bench-<name>-<uuid>` of the dev server at `address`. The caller runs the worker and calls `close`.
 */
export const startBenchWorker = async (o: {
  address: string;
  name: string;
  database: Database;
  keyring: Keyring;
  stagingDir: string;
  config?: Config;
  logger?: Logger;
}): Promise<BenchWorker> => {
  const dataConverter = dataConverterFor(o.keyring);
  const connection = await Connection.connect({ address: o.address });
  let nativeConnection: NativeConnection | undefined;
  const close = async () => {
    await nativeConnection?.close();
    await connection.close();
  };
  try {
    nativeConnection = await NativeConnection.connect({ address: o.address });
    const taskQueue = `bench-${o.name}-${randomUUID()}`;
    const config = o.config ?? loadConfig({});
    const worker = await createWorker({
      connection: nativeConnection,
      namespace: 'default',
      taskQueue,
      activities: createActivities({
        database: o.database,
        keyring: o.keyring,
        catalog: defaultCatalog,
        stagingDir: o.stagingDir,
        config,
        logger: o.logger ?? createLogger('silent'),
        clock: () => new Date(),
      }),
      dataConverter,
      // As production caps it (runtime/app-server.ts): without a cap the SDK sizes the cache from the heap, and 5,000
      // request workflows created at once ran the workflow thread out of memory.
      maxCachedWorkflows: config.CUSTODIAN_WORKER_MAX_CACHED_WORKFLOWS,
    });
    return { client: new Client({ connection, namespace: 'default', dataConverter }), worker, taskQueue, close };
  } catch (err) {
    await close();
    throw err;
  }
};
