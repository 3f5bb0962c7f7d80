import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type postgres from 'postgres';
import { stageImportFile } from '../activities/import-staging';
import { importActivities, type ImportBatchesResult } from '../activities/subject-import';
import { connect } from '../db/client';
import { defaultCatalog } from '../domain/catalog';
import { importWorkflowId } from '../domain/ids';
import { generateKeyFile, parseKeyring, type Keyring } from '../runtime/keyring';
import { resolveTemporalCli } from '../runtime/temporal-cli';
import { startDevServer } from '../runtime/temporal-server';
import { subjectImport } from '../workflows';
import { startBenchWorker, type BenchWorker } from './worker';
import { compare, type Measurement, type ScenarioResult } from './harness';

/** A synthetic, clearly fake customer file: 5 encrypted values per subject (3 fields + email and phone). */
const writeFile = async (path: string, subjects: number): Promise<void> => {
  const out = createWriteStream(path);
  for (let i = 0; i < subjects; i++) {
    const n = String(i).padStart(8, '0');
    const line = JSON.stringify({
      externalRef: `BENCH-${n}`,
      jurisdiction: 'CN',
      locale: 'zh-CN',
      contact: { email: `fake.${n}@example.invalid`, phone: `1390${n.slice(1)}` },
      retentionUntil: '2031-12-31',
      fields: { name: `测试${n}`, idNumber: `11010519900101${n.slice(-4)}`, bankAccount: `62220000${n}` },
    });
    if (!out.write(`${line}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
};

const copyText = (v: string) =>
  v.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]!);

/** The baseline: the same rows, parsed from the same file, unencrypted, loaded with COPY into look-alike tables. */
const copyBaseline = async (sql: postgres.Sql, path: string): Promise<number> => {
  await sql`create table bench_subjects (like subjects including all)`;
  await sql`create table bench_subject_fields (like subject_fields including all)`;
  const started = performance.now();
  const subjects =
    await sql`copy bench_subjects (id, external_ref, jurisdiction, locale, retention_until) from stdin`.writable();
  const fields =
    await sql`copy bench_subject_fields (subject_id, field, classification, classified, value_type, plain_value) from stdin`.writable();
  const write = async (stream: typeof subjects, chunk: string) => {
    if (!stream.write(chunk)) await once(stream, 'drain');
  };
  let subjectRows = '';
  let fieldRows = '';
  let count = 0;
  for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
    const s = JSON.parse(line) as {
      externalRef: string;
      contact: Record<string, string>;
      fields: Record<string, string>;
    };
    const id = randomUUID();
    subjectRows += `${id}\t${copyText(s.externalRef)}\tCN\tzh-CN\t2031-12-31\n`;
    for (const [field, value] of Object.entries({ ...s.fields, ...s.contact })) {
      fieldRows += `${id}\t${field}\tgeneral\tt\tstring\t${copyText(value)}\n`;
    }
    count += 1;
    if (fieldRows.length > 1 << 16) {
      await write(subjects, subjectRows);
      await write(fields, fieldRows);
      subjectRows = fieldRows = '';
    }
  }
  subjects.end(subjectRows);
  fields.end(fieldRows);
  await Promise.all([once(subjects, 'finish'), once(fields, 'finish')]);
  return count / ((performance.now() - started) / 1000);
};

/** Each measured import starts from empty subject tables, so neither runs against the other's rows. */
const emptySubjectTables = (sql: postgres.Sql) => sql`truncate subject_fields, subject_keys, subjects`;

/**
 * What a user's import goes through: the file is staged, `import-{id}` starts on a Temporal dev server
 * (with the payload codec), and a real worker (the production bundle, activities and prepare threads)
 * runs it to completion. Timed from the first staged byte to the workflow's result; the dev server
 * start and the workflow bundle are not timed.
 */
const endToEnd = async (databaseUrl: string, keyring: Keyring, source: string, work: string): Promise<number> => {
  // Worker state changes at INFO would bury the figures; warnings and errors still show.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const cli = await resolveTemporalCli(process.env, () => {});
  if (!cli.path) throw new Error('the end-to-end import needs a Temporal CLI (TEMPORAL_CLI_PATH, PATH, cache or go)');
  const server = await startDevServer({ cliPath: cli.path });
  // The worker has a pool of its own, as in production.
  const database = connect(databaseUrl);
  const stagingDir = join(work, 'staging-e2e');
  let bench: BenchWorker | undefined;
  try {
    bench = await startBenchWorker({ address: server.address, name: 'import', database, keyring, stagingDir });
    const { client, worker, taskQueue } = bench;
    const importId = randomUUID();
    return await worker.runUntil(async () => {
      const started = performance.now();
      const staged = await stageImportFile(stagingDir, importId, createReadStream(source), { maxBytes: 2 ** 40 });
      const report = await client.workflow.execute(subjectImport, {
        taskQueue,
        workflowId: importWorkflowId(importId),
        args: [{ importId, mode: 'insert', requestedBy: 'bench', totalLines: staged.lines, stagedBytes: staged.bytes }],
      });
      const seconds = (performance.now() - started) / 1000;
      if (report.status !== 'completed' || report.imported !== staged.lines) {
        throw new Error(`import ${report.status}: imported ${report.imported} of ${staged.lines} subjects`);
      }
      return seconds;
    });
  } finally {
    await bench?.close();
    await database.close();
    await server.stop();
  }
};

/**
 * Import scenario: `subjects` subjects with 5 encrypted fields each, (1) through the import activity
 * alone (validate, classify, per-subject data key, encrypt, blind index, batched transactional
 * insert) and (2) end to end through the workflow on a dev server and a real worker, both against a
 * same-run baseline that COPYs the same rows, parsed from the same file, unencrypted into look-alike
 * tables. Expects a migrated scratch database (bench/run.ts makes one).
 */
export async function importBenchmark(ctx: { databaseUrl: string; subjects?: number }): Promise<ScenarioResult[]> {
  const subjects = ctx.subjects ?? 100_000;
  const work = await mkdtemp(join(tmpdir(), 'custodian-bench-import-'));
  const database = connect(ctx.databaseUrl);
  try {
    const source = join(work, 'subjects.ndjson');
    await writeFile(source, subjects);
    const baseline: Measurement = {
      label: 'COPY of the same rows, unencrypted',
      perSecond: await copyBaseline(database.sql, source),
    };
    const name = `subject import: ${subjects.toLocaleString('en')} subjects × 5 encrypted fields (subjects/s)`;

    const stagingDir = join(work, 'staging');
    const importId = randomUUID();
    const staged = await stageImportFile(stagingDir, importId, createReadStream(source), { maxBytes: 2 ** 40 });
    const keyring = parseKeyring(generateKeyFile(), 'bench');
    const activities = importActivities({ db: database.db, keyring, catalog: defaultCatalog, stagingDir });
    const env = new MockActivityEnvironment();
    await env.run(activities.beginSubjectImport, {
      importId,
      mode: 'insert' as const,
      requestedBy: 'bench',
      totalLines: staged.lines,
      stagedBytes: staged.bytes,
    });
    const started = performance.now();
    const result: ImportBatchesResult = await env.run(activities.importSubjectBatches, {
      importId,
      mode: 'insert' as const,
      cursor: { offset: 0, line: 1 },
      batchLines: 1000,
      maxBatches: Number.MAX_SAFE_INTEGER,
    });
    const seconds = (performance.now() - started) / 1000;
    if (result.counts.imported !== subjects) {
      throw new Error(`imported ${result.counts.imported} of ${subjects} subjects`);
    }
    const activity = compare(name, baseline, {
      label: 'import activity (validate, encrypt, insert)',
      perSecond: subjects / seconds,
    });

    await emptySubjectTables(database.sql);
    const endToEndSeconds = await endToEnd(ctx.databaseUrl, keyring, source, work);
    const workflow = compare(`${name}, end to end`, baseline, {
      label: 'stage → import-{id} workflow → completed',
      perSecond: subjects / endToEndSeconds,
    });
    return [activity, workflow];
  } finally {
    await database.sql`drop table if exists bench_subjects, bench_subject_fields`;
    await database.close();
    await rm(work, { recursive: true, force: true });
  }
}
