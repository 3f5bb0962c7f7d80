/**
 * Records every declared scenario into test/replay/histories/<workflowType>/<scenario>.json, from real
 * runs on a dev server. Usage: `npm run replay:record [workflowType | workflowType/scenario …]`
 * (TEST_DATABASE_URL, or an embedded PostgreSQL; TEMPORAL_CLI_PATH or the usual CLI lookup).
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { NativeConnection, Worker } from '@temporalio/worker';
import postgres from 'postgres';
import { activitiesFor } from '../helpers/activities';
import { connect } from '../../db/client';
import { runMigrations } from '../../db/migrate';
import { loadConfig } from '../../runtime/config';
import { withDatabase } from '../../runtime/database-url';
import { startEmbeddedPostgres } from '../../runtime/embedded-postgres';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { freePort } from '../../runtime/ports';
import { resolveTemporalCli } from '../../runtime/temporal-cli';
import { startDevServer } from '../../runtime/temporal-server';
import { workflowsPath } from '../../runtime/worker';
import { scenarios } from './scenarios';

const historiesDir = new URL('./histories/', import.meta.url);
const only = process.argv.slice(2);

const scratch = mkdtempSync(join(tmpdir(), 'custodian-record-'));
const embedded = process.env.TEST_DATABASE_URL
  ? undefined
  : await startEmbeddedPostgres(join(scratch, 'pg'), await freePort(), 'postgres');
const serverUrl = process.env.TEST_DATABASE_URL ?? embedded!.url;
const dbName = `custodian_record_${process.pid}`;
const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
await admin.unsafe(`create database "${dbName}"`);
const databaseUrl = withDatabase(serverUrl, dbName);
await runMigrations(databaseUrl);
const database = connect(databaseUrl);

const cli = await resolveTemporalCli();
const server = await startDevServer({ cliPath: cli.path! });
const keyring = parseKeyring(generateKeyFile(), 'record');
const taskQueue = `record-${randomUUID()}`;
const stagingDir = join(scratch, 'imports');
mkdirSync(stagingDir, { recursive: true });
// Recorded without the payload codec: replay checks workflow determinism, not encryption.
const worker = await Worker.create({
  connection: await NativeConnection.connect({ address: server.address }),
  taskQueue,
  workflowsPath,
  activities: activitiesFor({
    database,
    keyring,
    stagingDir,
    config: loadConfig({ BACKUP_DIR: join(scratch, 'backups') }),
  }),
});
const client = new Client({ connection: await Connection.connect({ address: server.address }) });

try {
  await worker.runUntil(async () => {
    for (const [workflowType, declared] of Object.entries(scenarios)) {
      for (const [scenario, run] of Object.entries(declared)) {
        if (only.length && !only.includes(workflowType) && !only.includes(`${workflowType}/${scenario}`)) continue;
        const handle = await run({ client, taskQueue, database, keyring, stagingDir });
        const history = await handle.fetchHistory();
        const dir = new URL(`${workflowType}/`, historiesDir);
        mkdirSync(dir, { recursive: true });
        const file = new URL(`${scenario}.json`, dir);
        const recorded = {
          workflowType,
          scenario,
          workflowId: handle.workflowId,
          history: JSON.parse(historyToJSON(history)),
        };
        writeFileSync(file, `${JSON.stringify(recorded, null, 1)}\n`);
        console.log(`recorded ${workflowType}/${scenario}: ${history.events?.length} events → ${file.pathname}`);
      }
    }
  });
} finally {
  await database.close();
  await admin.unsafe(`drop database if exists "${dbName}" with (force)`);
  await admin.end();
  await server.stop();
  await embedded?.stop();
  rmSync(scratch, { recursive: true, force: true });
}
