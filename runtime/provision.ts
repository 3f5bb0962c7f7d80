import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startEmbeddedPostgres } from './embedded-postgres';
import { freePort, isPortFree } from './ports';
import { resolveTemporalCli } from './temporal-cli';
import { startDevServer } from './temporal-server';
import type { Config } from './config';

export type Say = (line: string) => void;

export interface ProvidedDatabase {
  url: string;
  stop(): Promise<void>;
}

export interface ProvidedTemporal {
  address: string;
  uiUrl?: string;
  stop(): Promise<void>;
}

/** DATABASE_URL, or a real PostgreSQL from the embedded-postgres binaries under the data directory. */
export const provideDatabase = async (config: Config, say: Say): Promise<ProvidedDatabase> => {
  if (config.DATABASE_URL) return { url: config.DATABASE_URL, stop: async () => {} };
  const dir = join(config.dataDir, 'postgres');
  const port = await freePort();
  const db = await startEmbeddedPostgres(dir, port, 'custodian', say);
  say(`PostgreSQL: embedded, 127.0.0.1:${port}, data in ${dir}`);
  return { url: db.url, stop: db.stop };
};

/** TEMPORAL_ADDRESS, or a Temporal CLI dev server whose state persists under the data directory. */
export const provideTemporal = async (config: Config, say: Say): Promise<ProvidedTemporal> => {
  if (config.TEMPORAL_ADDRESS) return { address: config.TEMPORAL_ADDRESS, stop: async () => {} };
  const cli = await resolveTemporalCli(process.env, say);
  mkdirSync(config.dataDir, { recursive: true });
  const dbFile = join(config.dataDir, 'temporal.db');
  const uiPort = (await isPortFree(config.TEMPORAL_UI_PORT)) ? config.TEMPORAL_UI_PORT : await freePort();
  if (!cli.path) return sdkDevServer(config, dbFile, uiPort, say);
  const server = await startDevServer({
    cliPath: cli.path,
    dbFile,
    namespace: config.TEMPORAL_NAMESPACE,
    ui: true,
    uiPort,
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
    server: { dbFilename: dbFile, namespace: config.TEMPORAL_NAMESPACE, ui: true, uiPort },
  });
  const uiUrl = `http://127.0.0.1:${uiPort}`;
  say(`Temporal: dev server at ${env.address}, Web UI ${uiUrl}`);
  return { address: env.address, uiUrl, stop: () => env.teardown() };
};
