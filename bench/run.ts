/**
 * `npm run bench`: every scenario against a baseline measured in the same run, printed as a ratio.
 * Uses BENCH_DATABASE_URL / TEST_DATABASE_URL, else an embedded PostgreSQL; a scratch database is
 * created and dropped.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { runMigrations } from '../db/migrate';
import { withDatabase } from '../runtime/database-url';
import { startEmbeddedPostgres } from '../runtime/embedded-postgres';
import { freePort } from '../runtime/ports';
import { auditBenchmark } from './audit';
import { campaignBenchmark } from './campaign';
import { backupBenchmark } from './backup';
import { consentMemoryBenchmark } from './consent-memory';
import { destructionBenchmark } from './destruction';
import { formatMemory, formatResult, isMemoryResult, type MemoryResult, type ScenarioResult } from './harness';
import { importBenchmark } from './import';
import { incidentBenchmark } from './incidents';
import { keyRotationBenchmark } from './key-rotation';
import { qualityBenchmark } from './quality';
import { requestBenchmark } from './requests';

/** A scenario may report several figures against its one baseline. */
type Result = ScenarioResult | MemoryResult;
const scenarios: Record<string, (ctx: { databaseUrl: string }) => Promise<Result | Result[]>> = {
  import: importBenchmark,
  audit: auditBenchmark,
  campaign: campaignBenchmark,
  'consent-memory': consentMemoryBenchmark,
  backup: backupBenchmark,
  incidents: incidentBenchmark,
  'key-rotation': keyRotationBenchmark,
  quality: qualityBenchmark,
  destruction: destructionBenchmark,
  requests: requestBenchmark,
};

const only = process.argv.slice(2);
const scratch = mkdtempSync(join(tmpdir(), 'custodian-bench-'));
const serverUrl = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
const embedded = serverUrl ? undefined : await startEmbeddedPostgres(join(scratch, 'pg'), await freePort(), 'postgres');
// The owner (a superuser) creates the scratch database; the scenarios measure on it as that owner.
const admin = postgres(serverUrl ?? embedded!.ownerUrl, { max: 1, onnotice: () => {} });
const dbName = `custodian_bench_${process.pid}`;
await admin.unsafe(`create database "${dbName}"`);
const databaseUrl = withDatabase(serverUrl ?? embedded!.ownerUrl, dbName);
let failed = false;
try {
  await runMigrations(databaseUrl);
  for (const [name, run] of Object.entries(scenarios)) {
    if (only.length && !only.includes(name)) continue;
    try {
      for (const result of [await run({ databaseUrl })].flat())
        console.log(isMemoryResult(result) ? formatMemory(result) : formatResult(result));
    } catch (err) {
      failed = true;
      console.error(`${name}: failed: ${(err as Error).message}`);
    }
  }
} finally {
  await admin.unsafe(`drop database if exists "${dbName}" with (force)`);
  await admin.end();
  await embedded?.stop();
  rmSync(scratch, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
