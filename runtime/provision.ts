import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { PoolOptions } from '../db/client';
import { serviceRoleOf } from '../db/migrate';
import { startEmbeddedPostgres } from './embedded-postgres';
import { freePort, isPortFree } from './ports';
import { resolveTemporalCli } from './temporal-cli';
import { startDevServer } from './temporal-server';
import type { Config } from './config';

export type Say = (line: string) => void;

export interface ProvidedDatabase {
  /** The service's connection (DATABASE_URL, or the embedded service role): for the API and worker pools. */
  url: string;
  /** The owning role's connection, for migrations only. */
  migrationUrl: string;
  /** The role migrations grant to, when it differs from the owner. */
  serviceRole?: string;
  stop(): Promise<void>;
}

export interface ProvidedTemporal {
  address: string;
  uiUrl?: string;
  stop(): Promise<void>;
}

/**
 * DATABASE_URL (with CUSTODIAN_MIGRATION_DATABASE_URL for migrations when set), or a real PostgreSQL from
 * the embedded-postgres binaries under the data directory: migrations as its owner, the service as a role
 * that owns nothing. Run migrations with `runMigrations(db.migrationUrl, { serviceRole: db.serviceRole })`.
 */
export const provideDatabase = async (config: Config, say: Say): Promise<ProvidedDatabase> => {
  ensureDataDir(config);
  if (config.DATABASE_URL) {
    const migrationUrl = config.CUSTODIAN_MIGRATION_DATABASE_URL ?? config.DATABASE_URL;
    return {
      url: config.DATABASE_URL,
      migrationUrl,
      serviceRole: serviceRoleOf(config.DATABASE_URL, migrationUrl),
      stop: async () => {},
    };
  }
  const dir = join(config.dataDir, 'postgres');
  const port = await freePort();
  const db = await startEmbeddedPostgres(dir, port, 'custodian', say);
  say(`PostgreSQL: embedded, 127.0.0.1:${port}, data in ${dir}; service role '${db.serviceRole}'`);
  return { url: db.url, migrationUrl: db.ownerUrl, serviceRole: db.serviceRole, stop: db.stop };
};

export type PoolRole = 'api' | 'worker';

/**
 * The API and the worker each get their own pool, with server-side statement and
 * idle-in-transaction limits, so a stuck import cannot hold the connections the API answers with.
 */
export const poolOptions = (config: Config, role: PoolRole): PoolOptions =>
  role === 'api'
    ? {
        applicationName: 'custodian-api',
        max: config.CUSTODIAN_API_DB_POOL_MAX,
        statementTimeoutMs: config.CUSTODIAN_API_STATEMENT_TIMEOUT_MS,
        idleInTransactionTimeoutMs: config.CUSTODIAN_API_IDLE_IN_TRANSACTION_TIMEOUT_MS,
      }
    : {
        applicationName: 'custodian-worker',
        max: config.CUSTODIAN_WORKER_DB_POOL_MAX,
        statementTimeoutMs: config.CUSTODIAN_WORKER_STATEMENT_TIMEOUT_MS,
        idleInTransactionTimeoutMs: config.CUSTODIAN_WORKER_IDLE_IN_TRANSACTION_TIMEOUT_MS,
      };

/**
 * The data directory holds keys and the Temporal database: 0700. As root with the embedded cluster,
 * `startEmbeddedPostgres` makes it 0710 with group `postgres`, the cluster's user, which must pass through.
 */
export const ensureDataDir = (config: Config): void => {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  if (config.DATABASE_URL || process.getuid?.() !== 0) chmodSync(config.dataDir, 0o700);
};

/** Where the Temporal UI (in the operator's browser) reaches this API's remote codec: `<public URL>/codec`. */
export const codecEndpoint = (config: Config) => `${config.CUSTODIAN_PUBLIC_URL.replace(/\/+$/, '')}/codec`;

/** TEMPORAL_ADDRESS, or a Temporal CLI dev server whose state persists under the data directory. */
export const provideTemporal = async (config: Config, say: Say): Promise<ProvidedTemporal> => {
  if (config.TEMPORAL_ADDRESS) return { address: config.TEMPORAL_ADDRESS, stop: async () => {} };
  const cli = await resolveTemporalCli(process.env, say);
  ensureDataDir(config);
  const dbFile = join(config.dataDir, 'temporal.db');
  const uiPort = (await isPortFree(config.TEMPORAL_UI_PORT)) ? config.TEMPORAL_UI_PORT : await freePort();
  if (!cli.path) return sdkDevServer(config, dbFile, uiPort, say);
  const server = await startDevServer({
    cliPath: cli.path,
    dbFile,
    namespace: config.TEMPORAL_NAMESPACE,
    ui: true,
    uiPort,
    uiCodecEndpoint: codecEndpoint(config),
    say,
    onLog: (line) => {
      if (/level=(ERROR|FATAL)/.test(line)) say(`temporal: ${line}`);
    },
  });
  say(`Temporal: dev server at ${server.address}, Web UI ${server.uiUrl}`);
  return { address: server.address, uiUrl: server.uiUrl, stop: server.stop };
};

/** The last resort, for machines with internet: the SDK downloads a CLI and runs the same dev server. */
const sdkDevServer = async (config: Config, dbFile: string, uiPort: number, say: Say): Promise<ProvidedTemporal> => {
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  say('Temporal: downloading a dev server through the Temporal SDK…');
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      dbFilename: dbFile,
      namespace: config.TEMPORAL_NAMESPACE,
      ui: true,
      uiPort,
      extraArgs: ['--ui-codec-endpoint', codecEndpoint(config)],
    },
  });
  const uiUrl = `http://127.0.0.1:${uiPort}`;
  say(`Temporal: dev server at ${env.address}, Web UI ${uiUrl}`);
  return { address: env.address, uiUrl, stop: () => env.teardown() };
};
