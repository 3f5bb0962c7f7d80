import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { insertNewSubjects, newSubject, pgArray, rawSql } from '../activities/subject-writer';
import { connect, type Database } from '../db/client';
import { defaultCatalog } from '../domain/catalog';
import { destructionWorkflowId } from '../domain/ids';
import { generateKeyFile, parseKeyring, type Keyring } from '../runtime/keyring';
import { resolveTemporalCli } from '../runtime/temporal-cli';
import { startDevServer } from '../runtime/temporal-server';
import { destruction } from '../workflows';
import { approvalUpdate } from '../workflows/destruction';
import { compare, type ScenarioResult } from './harness';
import { startBenchWorker, type BenchWorker } from './worker';

/** `count` clearly fake subjects (name, email, phone encrypted, a plain segment), written as the import writes them. */
const seed = async (database: Database, keyring: Keyring, count: number): Promise<string[]> => {
  const tag = randomUUID().slice(0, 8);
  const ids: string[] = [];
  for (let from = 0; from < count; from += 2000) {
    const batch = Array.from({ length: Math.min(2000, count - from) }, (_, k) => {
      const n = `${tag}-${from + k}`;
      return newSubject(
        defaultCatalog,
        keyring,
        { externalRef: `BENCH-${n}`, jurisdiction: 'CN', locale: 'zh-CN', fields: {} },
        new Map([
          ['name', `Bench Person ${n}`],
          ['email', `bench.${n}@example.invalid`],
          ['phone', `+86 139 ${String(10_000_000 + from + k).slice(-8)}`],
          ['segment', 'retail'],
        ]),
      );
    });
    await rawSql(database.db).begin((tx) => insertNewSubjects(tx, `bench-${tag}`, batch));
    ids.push(...batch.map((s) => s.subject.id));
  }
  return ids;
};

/** Where a round's time went (BENCH_DETAIL=1): each audit entry after the second approval was sent, in ms. */
const steps = async (database: Database, destructionId: string, round: number, since: number, end: number) => {
  const entries = await database.sql<{ action: string; at: Date }[]>`
    select action, at from audit_log where target_id = ${destructionId} and at >= ${new Date(since).toISOString()}::timestamptz order by seq`;
  const offsets = entries.map((e) => `${e.action.replace('destruction.', '')} +${new Date(e.at).getTime() - since}`);
  return `destruction round ${round}: ${[...offsets, `result +${end - since}`].join(', ')}`;
};

const approver = (n: number) => ({ userId: randomUUID(), actor: `user:bench-approver-${n}`, role: 'approver' });

/**
 * A destruction request over `count` subjects, timed from the second approval to the certificate (zero grace
 * window: the wait is policy, not work) — scope check, crypto-shred in batches with their audit entries,
 * verification, signed certificate — on a dev server with a real worker, against a plain `DELETE` of the same rows
 * (keys, fields, subjects) of as many other subjects in one transaction, no audit, no verification. Two rounds,
 * taking turns, so machine load falls on both; the figures are the totals.
 */
export async function destructionBenchmark(ctx: { databaseUrl: string; count?: number }): Promise<ScenarioResult> {
  const count = ctx.count ?? 10_000;
  const rounds = 2;
  const work = await mkdtemp(join(tmpdir(), 'custodian-bench-destruction-'));
  const database = connect(ctx.databaseUrl);
  const keyring = parseKeyring(generateKeyFile(), 'bench');
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // Installed by an earlier scenario of the same run.
  }
  const cli = await resolveTemporalCli(process.env, () => {});
  if (!cli.path)
    throw new Error('the destruction benchmark needs a Temporal CLI (TEMPORAL_CLI_PATH, PATH, cache or go)');
  const server = await startDevServer({ cliPath: cli.path });
  let bench: BenchWorker | undefined;
  try {
    bench = await startBenchWorker({
      address: server.address,
      name: 'destruction',
      database,
      keyring,
      stagingDir: work,
    });
    const { client, worker, taskQueue } = bench;
    let baselineMs = 0;
    let destructionMs = 0;
    await worker.runUntil(async () => {
      for (let round = 0; round < rounds; round++) {
        const plain = await seed(database, keyring, count);
        const started = performance.now();
        await database.sql.begin(async (tx) => {
          const ids = pgArray(plain);
          await tx`delete from subject_keys where subject_id = any(${ids}::uuid[])`;
          await tx`delete from subject_fields where subject_id = any(${ids}::uuid[])`;
          await tx`delete from subjects where id = any(${ids}::uuid[])`;
        });
        baselineMs += performance.now() - started;

        const doomed = await seed(database, keyring, count);
        const destructionId = randomUUID();
        const handle = await client.workflow.start(destruction, {
          taskQueue,
          workflowId: destructionWorkflowId(destructionId),
          args: [
            {
              destructionId,
              scope: { kind: 'subjects', subjectIds: doomed },
              reason: 'bench',
              requestedBy: 'user:bench',
              approvalWindowMs: 600_000,
              graceMs: 0,
            },
          ],
        });
        await handle.executeUpdate(approvalUpdate, { args: [approver(1), { decision: 'approve', comment: 'bench' }] });
        const approvedAt = performance.now();
        const approvedWall = Date.now();
        await handle.executeUpdate(approvalUpdate, { args: [approver(2), { decision: 'approve', comment: 'bench' }] });
        const outcome = await handle.result();
        destructionMs += performance.now() - approvedAt;
        if (process.env.BENCH_DETAIL)
          console.error(await steps(database, destructionId, round, approvedWall, Date.now()));
        if (outcome.status !== 'completed' || outcome.subjectsDestroyed !== count || !outcome.certificateId)
          throw new Error(`destruction ended ${outcome.status} with ${outcome.subjectsDestroyed} subjects destroyed`);
      }
    });
    const n = (rounds * count).toLocaleString('en');
    return compare(
      `destruction: ${count.toLocaleString('en')} subjects, approval to certificate (subjects/s, ${rounds} rounds)`,
      { label: `plain DELETE of keys, fields, subjects (${n})`, perSecond: (rounds * count) / (baselineMs / 1000) },
      {
        label: 'destruction-{id}: shred, tombstone, audit, verify, sign',
        perSecond: (rounds * count) / (destructionMs / 1000),
      },
    );
  } finally {
    await bench?.close();
    await server.stop();
    await database.close();
    await rm(work, { recursive: true, force: true });
  }
}
