/**
 * A worker in a process of its own built the way production builds it (runtime/worker.ts `createWorker`), so a
 * test can SIGKILL it and see what a crash does to a real deployment. Environment as import-worker.ts:
 * TEMPORAL_ADDRESS, TASK_QUEUE, DATABASE_URL, STAGING_DIR, KEY_FILE_JSON, WORKFLOW_BUNDLE (its source map beside it,
 * `<path>.map`), STANDBY. Prints "ready" once polling.
 */
import { readFileSync } from 'node:fs';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { connect } from '../../db/client';
import { parseKeyring } from '../../runtime/keyring';
import { dataConverterFor } from '../../runtime/payload-codec';
import { createWorker } from '../../runtime/worker';
import { activitiesFor } from './activities';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

Runtime.install({ logger: new DefaultLogger('WARN') });
const keyring = parseKeyring(JSON.parse(env('KEY_FILE_JSON')), 'KEY_FILE_JSON');
const database = connect(env('DATABASE_URL'));
const connection = await NativeConnection.connect({ address: env('TEMPORAL_ADDRESS') });
const worker = await createWorker({
  connection,
  namespace: 'default',
  taskQueue: env('TASK_QUEUE'),
  activities: activitiesFor({ database, keyring, stagingDir: env('STAGING_DIR') }),
  dataConverter: dataConverterFor(keyring),
  workflowBundle: {
    code: readFileSync(env('WORKFLOW_BUNDLE'), 'utf8'),
    sourceMap: readFileSync(`${env('WORKFLOW_BUNDLE')}.map`, 'utf8'),
  },
});
// STANDBY=1: built and connected, but polling only once a line arrives on stdin (a fast "restart").
if (process.env.STANDBY === '1') {
  console.log('standby');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  // Done with stdin: an open pipe would keep the process alive after the worker stops.
  process.stdin.destroy();
}
const running = worker.run();
console.log('ready');
await running;
await database.close();
await connection.close();
