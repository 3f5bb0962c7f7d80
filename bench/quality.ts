import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { and, asc, gt, inArray, ne } from 'drizzle-orm';
import { decryptField } from '../activities/crypto/field-cipher';
import { dataKeys } from '../activities/keys';
import { connect, type Database } from '../db/client';
import { subjectFields, subjects } from '../db/schema';
import { qualityCheckWorkflowId } from '../domain/ids';
import { QualityThresholds, validate } from '../domain/quality';
import { generateKeyFile, parseKeyring, type Keyring } from '../runtime/keyring';
import { resolveTemporalCli } from '../runtime/temporal-cli';
import { startDevServer } from '../runtime/temporal-server';
import { insertSubjects } from '../test/helpers/campaign-subjects';
import { qualityCheck } from '../workflows';
import { compare, type ScenarioResult } from './harness';
import { ownDatabase } from './own-database';
import { startBenchWorker, type BenchWorker } from './worker';

const PAGE = 500;

/** The check's per-subject work in a plain loop: pages of subjects, their fields and keys, decrypt, validate. */
const plainCheck = async (database: Database, keyring: Keyring): Promise<number> => {
  const t = QualityThresholds.parse({});
  const keys = dataKeys({ db: database.db, keyring });
  const now = new Date();
  let checked = 0;
  let invalid = 0;
  for (let after = ''; ;) {
    const page = await database.db
      .select({ id: subjects.id })
      .from(subjects)
      .where(and(ne(subjects.status, 'destroyed'), after ? gt(subjects.id, after) : undefined))
      .orderBy(asc(subjects.id))
      .limit(PAGE);
    if (page.length === 0) break;
    const ids = page.map((p) => p.id);
    const rows = await database.db.select().from(subjectFields).where(inArray(subjectFields.subjectId, ids));
    const dataKeyOf = await keys.loadDataKeys(ids);
    for (const row of rows) {
      const validator = t.validators[row.field];
      if (!validator) continue;
      const key = dataKeyOf.get(row.subjectId)!;
      const value =
        row.plainValue ??
        decryptField(
          key.dek,
          { subjectId: row.subjectId, field: row.field, keyVersion: key.keyVersion },
          row.ciphertext!,
        );
      if (!validate(validator, value, t, now)) invalid++;
    }
    checked += page.length;
    after = ids[ids.length - 1]!;
  }
  if (invalid > 0) throw new Error(`${invalid} of the generated values failed validation`);
  return checked;
};

/**
 * The data-quality check over `count` subjects (subjects checked per second: pages of 500 with their counts
 * committed, duplicates and consistency over the registry, the report) on a dev server with a real worker, against
 * the same reads, decryption and validation in a plain loop with no Temporal, no page rows and no report.
 */
export async function qualityBenchmark(ctx: { databaseUrl: string; count?: number }): Promise<ScenarioResult> {
  const count = ctx.count ?? 10_000;
  const work = await mkdtemp(join(tmpdir(), 'custodian-bench-quality-'));
  const own = await ownDatabase(ctx.databaseUrl, 'quality');
  const database = connect(own.url);
  const keyring = parseKeyring(generateKeyFile(), 'bench');
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // Installed by an earlier scenario of the same run.
  }
  const cli = await resolveTemporalCli(process.env, () => {});
  if (!cli.path) throw new Error('the quality benchmark needs a Temporal CLI (TEMPORAL_CLI_PATH, PATH, cache or go)');
  const server = await startDevServer({ cliPath: cli.path });
  let bench: BenchWorker | undefined;
  try {
    await insertSubjects(database.db, keyring, count);
    const baselineStarted = performance.now();
    const plain = await plainCheck(database, keyring);
    const baselineMs = performance.now() - baselineStarted;

    bench = await startBenchWorker({ address: server.address, name: 'quality', database, keyring, stagingDir: work });
    const { client, worker, taskQueue } = bench;
    const checkId = randomUUID();
    let checkMs = 0;
    const result = await worker.runUntil(async () => {
      const started = performance.now();
      const r = await client.workflow.execute(qualityCheck, {
        taskQueue,
        workflowId: qualityCheckWorkflowId(checkId),
        args: [{ checkId, requestedBy: 'bench', pageSize: PAGE }],
      });
      checkMs = performance.now() - started;
      return r;
    });
    if (result.subjectsChecked !== plain) throw new Error(`checked ${result.subjectsChecked}, the plain loop ${plain}`);
    return compare(
      `quality check: ${plain.toLocaleString('en')} subjects (subjects/s)`,
      { label: 'read, decrypt, validate in a plain loop', perSecond: plain / (baselineMs / 1000) },
      { label: 'quality-check-{id}: pages, counts, report', perSecond: result.subjectsChecked / (checkMs / 1000) },
    );
  } finally {
    await bench?.close();
    await server.stop();
    await database.close();
    await own.drop();
    await rm(work, { recursive: true, force: true });
  }
}
