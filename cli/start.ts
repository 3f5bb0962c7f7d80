import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadCatalog } from '../activities/catalog';
import { connect, type Database } from '../db/client';
import { runMigrations } from '../db/migrate';
import { selfCheckWorkflowId } from '../domain/ids';
import { adminKeyFile, ensureFirstAdmin } from '../runtime/admin-key';
import { connectClient, startApi, startWorker } from '../runtime/app-server';
import { ConfigError, loadConfig, type Config } from '../runtime/config';
import { loadKeyring, type Keyring } from '../runtime/keyring';
import { createLogger, type Logger } from '../runtime/logger';
import { createMetrics } from '../runtime/metrics';
import { startMaintenance } from '../runtime/maintenance';
import { buildServices } from '../runtime/services';
import { removeRuntimeFile, writeRuntimeFile } from '../runtime/runtime-file';
import { ensureDataDir, poolOptions, provideDatabase, provideTemporal, type Say } from '../runtime/provision';
import { selfCheck } from '../workflows';

const say: Say = (line) => console.log(`[custodian] ${line}`);
const STOP_STEP_MS = 30_000;

/** We stop the worker ourselves, after the API and before Temporal; the SDK's own signal hook would race us. */
const installWorkerRuntime = () => Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });

/** Stops what was started, last first; one failure does not keep the rest running. */
class Stack {
  private readonly stops: { name: string; stop: () => Promise<unknown> }[] = [];
  push(name: string, stop: () => Promise<unknown>) {
    this.stops.push({ name, stop });
  }
  async unwind() {
    for (const { name, stop } of this.stops.reverse()) {
      const started = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer after ${STOP_STEP_MS / 1000} s`)), STOP_STEP_MS);
      });
      await Promise.race([stop(), timedOut]).then(
        () => say(`stopped ${name} (${Date.now() - started} ms)`),
        (err: unknown) => say(`stopping ${name} failed: ${(err as Error).message}`),
      );
      clearTimeout(timer);
    }
    this.stops.length = 0;
  }
}

const untilSignal = () =>
  new Promise<NodeJS.Signals>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve(signal));
  });

const requireExternal = (config: Config, command: string) => {
  if (!config.DATABASE_URL) throw new ConfigError(`DATABASE_URL: required by '${command}' (use 'start' for embedded)`);
  if (!config.TEMPORAL_ADDRESS) throw new ConfigError(`TEMPORAL_ADDRESS: required by '${command}'`);
  return { databaseUrl: config.DATABASE_URL, temporalAddress: config.TEMPORAL_ADDRESS };
};

/** The services of this process, one set per database pool; the catalog and the metrics are shared. */
const processServices = (parts: { config: Config; keyring: Keyring; logger: Logger; temporal: Client }) => {
  const catalog = loadCatalog(parts.config.CUSTODIAN_CATALOG_FILE);
  const metrics = createMetrics();
  return (database: Database) => buildServices({ ...parts, catalog, metrics, database });
};

/** `custodian start`: everything in one process tree, on embedded defaults unless told otherwise. */
export const startCommand = async (): Promise<void> => {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL);
  const firstStart = !existsSync(config.dataDir);
  const stack = new Stack();
  installWorkerRuntime();
  try {
    ensureDataDir(config);
    const { keyring } = await loadKeyring({
      env: config,
      dataDir: config.dataDir,
      allowGenerate: !config.DATABASE_URL,
      say,
    });
    const db = await provideDatabase(config, say);
    stack.push('PostgreSQL', db.stop);
    await runMigrations(db.migrationUrl, { serviceRole: db.serviceRole });
    say('Database: migrations applied');
    // The API and the worker each get a pool of their own, so no import can starve the API.
    const apiPool = connect(db.url, poolOptions(config, 'api'));
    stack.push('API database pool', apiPool.close);
    const workerPool = connect(db.url, poolOptions(config, 'worker'));
    stack.push('worker database pool', workerPool.close);
    const temporal = await provideTemporal(config, say);
    stack.push('Temporal', temporal.stop);
    const clients = await connectClient(temporal.address, config, keyring);
    stack.push('Temporal client', clients.close);
    const services = processServices({ config, keyring, logger, temporal: clients.client });
    const worker = await startWorker(temporal.address, services(workerPool));
    stack.push('worker', worker.stop);
    const maintenance = startMaintenance(services(workerPool));
    stack.push('audit checkpoints and staging sweep', maintenance.stop);
    say(`Worker: polling task queue '${config.TEMPORAL_TASK_QUEUE}'`);
    const api = await startApi(services(apiPool));
    stack.push('API', api.close);
    const adminKey = await ensureFirstAdmin(apiPool.db, config.dataDir);

    const checkId = randomUUID();
    await clients.client.workflow.execute(selfCheck, {
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      workflowId: selfCheckWorkflowId(checkId),
      args: [{ checkId, token: randomBytes(8).toString('hex') }],
      workflowExecutionTimeout: '1 minute',
    });
    say('Self-check: a workflow ran through worker, codec and audit chain');
    writeRuntimeFile(config.dataDir, {
      pid: process.pid,
      databaseUrl: db.url,
      temporalAddress: temporal.address,
      apiUrl: api.url,
    });
    stack.push('runtime file', async () => removeRuntimeFile(config.dataDir));
    if (adminKey) {
      say('First start: created user "admin" with this API key (shown once; also in the file below):');
      console.log(`\n    ${adminKey}\n`);
      say(`Admin key file: ${adminKeyFile(config.dataDir)} (mode 0600)`);
    }
    say(`Ready: API ${api.url} (docs ${api.url}/docs)${temporal.uiUrl ? `, Temporal UI ${temporal.uiUrl}` : ''}`);
    say('Ctrl-C stops everything.');
  } catch (err) {
    await stack.unwind();
    // A failed first start leaves no half-initialised data directory behind.
    if (firstStart) rmSync(config.dataDir, { recursive: true, force: true });
    throw err;
  }
  const signal = await untilSignal();
  say(`${signal}: stopping API, worker, Temporal and PostgreSQL…`);
  // A terminal's Ctrl-C reaches the embedded PostgreSQL too (same process group; the library spawns it there), so it
  // shuts down beside us: an operation still in flight then fails on a closed connection. While stopping, such a
  // failure is reported in one line (name, code — never a value) instead of crashing the process with a stack trace.
  process.on('unhandledRejection', (err) => {
    const e = err as { name?: string; code?: string; message?: string };
    say(`while stopping, an unfinished operation failed: ${e.name ?? 'Error'}${e.code ? ` (${e.code})` : ''}`);
  });
  await stack.unwind();
  say('Stopped.');
};

/** `custodian api`: the HTTP API alone, against an existing PostgreSQL and Temporal service. */
export const apiCommand = async (): Promise<void> => {
  const config = loadConfig();
  const { databaseUrl, temporalAddress } = requireExternal(config, 'api');
  const { keyring } = await loadKeyring({ env: config, dataDir: config.dataDir, allowGenerate: false, say });
  const stack = new Stack();
  const database = connect(databaseUrl, poolOptions(config, 'api'));
  stack.push('database pool', database.close);
  const clients = await connectClient(temporalAddress, config, keyring);
  stack.push('Temporal client', clients.close);
  const logger = createLogger(config.LOG_LEVEL);
  const api = await startApi(processServices({ config, keyring, logger, temporal: clients.client })(database));
  stack.push('API', api.close);
  say(`API listening on ${api.url}`);
  await untilSignal();
  await stack.unwind();
};

/** `custodian worker`: one worker process; run as many as the load needs. */
export const workerCommand = async (): Promise<void> => {
  const config = loadConfig();
  const { databaseUrl, temporalAddress } = requireExternal(config, 'worker');
  const { keyring } = await loadKeyring({ env: config, dataDir: config.dataDir, allowGenerate: false, say });
  const database = connect(databaseUrl, poolOptions(config, 'worker'));
  const clients = await connectClient(temporalAddress, config, keyring);
  const logger = createLogger(config.LOG_LEVEL);
  const services = processServices({ config, keyring, logger, temporal: clients.client })(database);
  const worker = await startWorker(temporalAddress, services);
  const maintenance = startMaintenance(services);
  say(`Worker: polling task queue '${config.TEMPORAL_TASK_QUEUE}' on ${temporalAddress}`);
  // The SDK's runtime shuts the worker down on SIGINT/SIGTERM; we wait for it to drain.
  await worker.done;
  await maintenance.stop();
  await clients.close();
  await database.close();
  say('Worker stopped.');
};
