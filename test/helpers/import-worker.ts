/**
 * A worker in a process of its own, so a test can SIGKILL it mid-import. Environment:
 * TEMPORAL_ADDRESS, TASK_QUEUE, DATABASE_URL, STAGING_DIR, KEY_FILE_JSON (a generateKeyFile() result),
 * WORKFLOW_BUNDLE (path of a prebuilt workflow bundle), optionally BACKUP_DIR. Prints "ready" once polling.
 */
import { NativeConnection, Runtime, DefaultLogger, Worker } from '@temporalio/worker';
import { activitiesFor } from './activities';
import { connect } from '../../db/client';
import { defaultCatalog } from '../../domain/catalog';
import { loadConfig } from '../../runtime/config';
import { parseKeyring } from '../../runtime/keyring';
import { dataConverterFor } from '../../runtime/payload-codec';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

Runtime.install({ logger: new DefaultLogger('WARN') });
const keyring = parseKeyring(JSON.parse(env('KEY_FILE_JSON')), 'KEY_FILE_JSON');
const database = connect(env('DATABASE_URL'));
const connection = await NativeConnection.connect({ address: env('TEMPORAL_ADDRESS') });
const worker = await Worker.create({
  connection,
  taskQueue: env('TASK_QUEUE'),
  workflowBundle: { codePath: env('WORKFLOW_BUNDLE') },
  activities: activitiesFor({
    database,
    keyring,
    catalog: defaultCatalog,
    stagingDir: env('STAGING_DIR'),
    config: loadConfig({ BACKUP_DIR: process.env.BACKUP_DIR }),
  }),
  dataConverter: dataConverterFor(keyring),
});
const running = worker.run();
console.log('ready');
await running;
await database.close();
await connection.close();
