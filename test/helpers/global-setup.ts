import { join } from 'node:path';
import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { runMigrations } from '../../db/migrate';
import { withDatabase } from '../../runtime/database-url';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../runtime/embedded-postgres';
import { freePort } from '../../runtime/ports';
import { resolveTemporalCli } from '../../runtime/temporal-cli';
import { startDevServer, type DevServer } from '../../runtime/temporal-server';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A database URL on the test server whose database is a migrated template for per-file copies. */
    templateDatabaseUrl: string;
    temporalAddress: string;
    temporalCliPath: string;
  }
}

const TEMPLATE = `custodian_template_${process.pid}`;

/** One PostgreSQL and one Temporal dev server for the whole run; each test file takes its own database copy. */
export default async function setup(project: TestProject) {
  let embedded: EmbeddedDatabase | undefined;
  let baseUrl = process.env.TEST_DATABASE_URL;
  if (!baseUrl) {
    embedded = await startEmbeddedPostgres(join(process.cwd(), '.data', 'test-postgres'), await freePort(), 'postgres');
    // The cluster's owner (a superuser): it creates the template and the per-file databases.
    baseUrl = embedded.ownerUrl;
  }
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop database if exists "${TEMPLATE}" with (force)`);
  await admin.unsafe(`create database "${TEMPLATE}"`);
  const templateUrl = withDatabase(baseUrl, TEMPLATE);
  await runMigrations(templateUrl);

  const cli = await resolveTemporalCli(process.env, (l) => console.log(l));
  if (!cli.path) throw new Error('Tests need a local Temporal CLI (TEMPORAL_CLI_PATH, PATH, cache or go)');
  const server: DevServer = await startDevServer({ cliPath: cli.path });

  project.provide('templateDatabaseUrl', templateUrl);
  project.provide('temporalAddress', server.address);
  project.provide('temporalCliPath', cli.path);

  return async () => {
    await server.stop();
    await admin.unsafe(`drop database if exists "${TEMPLATE}" with (force)`).catch(() => {});
    await admin.end({ timeout: 5 });
    await embedded?.stop();
  };
}
