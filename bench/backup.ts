import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { inArray } from 'drizzle-orm';
import type postgres from 'postgres';
import { connect, type Database } from '../db/client';
import { backups } from '../db/schema';
import type { SignedManifest } from '../domain/backup';
import { backupWorkflowId, restoreTestWorkflowId } from '../domain/ids';
import { loadConfig } from '../runtime/config';
import { generateKeyFile, parseKeyring } from '../runtime/keyring';
import { resolveTemporalCli } from '../runtime/temporal-cli';
import { startDevServer } from '../runtime/temporal-server';
import { backup, restoreTest } from '../workflows';
import { startBenchWorker, type BenchWorker } from './worker';
import { compare, type ScenarioResult } from './harness';

/**
 * `subjects` subjects as the import leaves them — three encrypted fields (ciphertext-sized random bytes, a key
 * version, a blind index on two) and one plain field each — and a wrapped data key per subject, built with bulk
 * SQL in a few statements rather than through the import (what is measured is the backup, not the seeding).
 */
const seed = async (sql: postgres.Sql, subjects: number) => {
  await sql`
    insert into subjects (id, external_ref, jurisdiction, locale, retention_until, import_id)
    select md5('subject' || i)::uuid, 'BENCH-' || lpad(i::text, 9, '0'), 'CN', 'zh-CN', date '2031-12-31', 'bench'
    from generate_series(1, ${subjects}) i`;
  await sql`
    insert into subject_keys (subject_id, key_version, kek_version, wrapped_key)
    select md5('subject' || i)::uuid, 1, 1, decode(md5('k' || i) || md5('w' || i) || md5('x' || i), 'hex')
    from generate_series(1, ${subjects}) i`;
  // Ciphertext sizes as the field cipher makes them: 1 + 4 + 12 + value + 16 bytes.
  await sql`
    insert into subject_fields (subject_id, field, classification, classified, value_type, key_version, ciphertext, blind_index)
    select md5('subject' || i)::uuid, f.field, f.classification, true, 'string', 1,
      decode(repeat(md5(f.field || i), f.blocks), 'hex'),
      case when f.indexed then encode(sha256(convert_to(f.field || i, 'UTF8')), 'hex') end
    from generate_series(1, ${subjects}) i,
      (values ('email', 'personal', 4, true), ('phone', 'personal', 3, true), ('idNumber', 'sensitive', 3, false))
        as f(field, classification, blocks, indexed)`;
  await sql`
    insert into subject_fields (subject_id, field, classification, classified, value_type, plain_value)
    select md5('subject' || i)::uuid, 'segment', 'general', true, 'string', case when i % 2 = 0 then 'retail' else 'wholesale' end
    from generate_series(1, ${subjects}) i`;
  await sql`vacuum analyze subjects, subject_keys, subject_fields`;
};

const run = (command: string, env: NodeJS.ProcessEnv): Promise<void> =>
  new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', command], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`baseline exited ${code}: ${stderr.trim().slice(0, 300)}`)),
    );
  });

/** The server's major version and pg_dump's: a pg_dump older than the server refuses to dump it. */
const versions = async (sql: postgres.Sql, pgDump: string) => {
  const [row] = await sql<{ v: number }[]>`select current_setting('server_version_num')::int as v`;
  const server = Math.floor(row!.v / 10_000);
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(pgDump, ['--version']);
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    child.on('error', reject);
    child.on('close', () => resolve(text));
  });
  return { server, pgDump: Number(/(\d+)\.\d+/.exec(out)?.[1] ?? 0) };
};

const seconds = (started: number) => (performance.now() - started) / 1000;

/**
 * Backup throughput against what a user would otherwise script, on the same database in the same run:
 * `pg_dump | gzip | openssl enc -aes-256-cbc -pbkdf2` (the machine's pg_dump, which must match the server's major
 * version: `PG_DUMP` names another) against `backup-{id}` on a dev server with a real worker and the payload codec
 * (consistent snapshot, COPY per table with SHA-256 and row counts, gzip, AES-256-GCM frames, fsync'd atomic
 * write, signed manifests; keyring and data backups), restore test not included. Both are given in MB/s of table
 * data (the COPY text the backup's manifests count), alternating over `rounds` so load from other processes falls
 * on both. Then the restore test of the same backups (`restore-test-{id}`), as a ratio to the backup time.
 */
export async function backupBenchmark(ctx: {
  databaseUrl: string;
  subjects?: number;
  rounds?: number;
}): Promise<ScenarioResult[]> {
  const subjects = ctx.subjects ?? 250_000;
  const rounds = ctx.rounds ?? 3;
  const pgDump = process.env.PG_DUMP ?? 'pg_dump';
  const work = await mkdtemp(join(tmpdir(), 'custodian-bench-backup-'));
  const database: Database = connect(ctx.databaseUrl);
  const keyring = parseKeyring(generateKeyFile(), 'bench');
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // Installed by an earlier scenario of the same run.
  }
  const cli = await resolveTemporalCli(process.env, () => {});
  if (!cli.path) throw new Error('the backup benchmark needs a Temporal CLI (TEMPORAL_CLI_PATH, PATH, cache or go)');
  const server = await startDevServer({ cliPath: cli.path });
  let bench: BenchWorker | undefined;
  try {
    const version = await versions(database.sql, pgDump);
    if (version.pgDump !== version.server)
      throw new Error(`pg_dump ${version.pgDump} does not match the server's ${version.server} (set PG_DUMP)`);
    const seeding = performance.now();
    await seed(database.sql, subjects);
    const [counted] = await database.sql<{ rows: number }[]>`select count(*)::int as rows from subject_fields`;
    const rows = counted!.rows;
    console.log(
      `backup: seeded ${subjects.toLocaleString('en')} subjects, ${rows.toLocaleString('en')} subject-field rows in ${seconds(seeding).toFixed(1)} s`,
    );

    const config = { ...loadConfig({}), BACKUP_DIR: join(work, 'backups') };
    bench = await startBenchWorker({
      address: server.address,
      name: 'backup',
      database,
      keyring,
      stagingDir: join(work, 'staging'),
      config,
    });
    const { client, worker, taskQueue } = bench;

    const passphrase = randomBytes(24).toString('hex');
    const times = { baseline: 0, backup: 0, restore: 0 };
    let tableBytes = 0;
    let baselineFile = 0;
    let backupFile = 0;
    await worker.runUntil(async () => {
      for (let round = 0; round < rounds; round++) {
        const out = join(work, `dump-${round}.sql.gz.enc`);
        let started = performance.now();
        await run(`"$PG_DUMP" --dbname="$DB" | gzip | openssl enc -aes-256-cbc -pbkdf2 -pass env:PASS -out "$OUT"`, {
          ...process.env,
          PG_DUMP: pgDump,
          DB: ctx.databaseUrl,
          PASS: passphrase,
          OUT: out,
        });
        times.baseline += seconds(started);
        baselineFile += (await stat(out)).size;
        await rm(out);

        const backupId = randomUUID();
        const keyringBackupId = randomUUID();
        started = performance.now();
        const written = await client.workflow.execute(backup, {
          taskQueue,
          workflowId: backupWorkflowId(backupId),
          args: [{ backupId, keyringBackupId, requestedBy: 'bench', restoreTest: false }],
        });
        times.backup += seconds(started);
        const manifests = await database.db
          .select({ manifest: backups.manifest, sizeBytes: backups.sizeBytes })
          .from(backups)
          .where(inArray(backups.id, [backupId, keyringBackupId]));
        for (const m of manifests) {
          tableBytes += (m.manifest as unknown as SignedManifest).manifest.plaintextBytes;
          backupFile += m.sizeBytes ?? 0;
        }

        const restoreTestId = randomUUID();
        started = performance.now();
        const tested = await client.workflow.execute(restoreTest, {
          taskQueue,
          workflowId: restoreTestWorkflowId(restoreTestId),
          args: [{ restoreTestId, backupId: written.backupId, trigger: 'api', requestedBy: 'bench' }],
        });
        times.restore += seconds(started);
        if (tested.status !== 'pass')
          throw new Error(`restore test ${tested.status}: ${JSON.stringify(tested.reasons)}`);
      }
    });

    const mb = tableBytes / rounds / 1e6;
    console.log(
      `backup: ${mb.toFixed(1)} MB of table data per backup; per round: pg_dump pipeline ${(times.baseline / rounds).toFixed(1)} s ` +
        `(${(baselineFile / rounds / 1e6).toFixed(1)} MB file), backup ${(times.backup / rounds).toFixed(1)} s ` +
        `(${(backupFile / rounds / 1e6).toFixed(1)} MB), restore test ${(times.restore / rounds).toFixed(1)} s; ` +
        `restore test time ÷ backup time ${(times.restore / times.backup).toFixed(2)} (goal ≤ 1.5)`,
    );
    const throughput = compare(
      `backup: ${rows.toLocaleString('en')} subject-field rows (MB/s of table data; goal ≥ 1.0×)`,
      { label: 'pg_dump | gzip | openssl enc -aes-256-cbc -pbkdf2', perSecond: (mb * rounds) / times.baseline },
      { label: 'backup-{id} workflow (keyring + data backups)', perSecond: (mb * rounds) / times.backup },
    );
    const restore = compare(
      `backup: restore test against the backup (MB/s; goal ≥ 0.67×, i.e. restore ≤ 1.5× the backup's time)`,
      { label: 'backup-{id} workflow', perSecond: (mb * rounds) / times.backup },
      { label: 'restore-test-{id} workflow (verify, restore, compare)', perSecond: (mb * rounds) / times.restore },
    );
    return [throughput, restore];
  } finally {
    await bench?.close();
    await database.close();
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}
