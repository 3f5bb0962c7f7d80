import { appendAudit } from '../activities/audit';
import { connect } from '../db/client';
import { compare, measure, type ScenarioResult } from './harness';

/** Runs `operations` calls of `op` from `appenders` concurrent callers, each awaiting its own in turn. */
const concurrently = (appenders: number, operations: number, op: (i: number) => Promise<unknown>) =>
  Promise.all(
    Array.from({ length: appenders }, async (_, first) => {
      for (let i = first; i < operations; i += appenders) await op(i);
    }),
  );

/**
 * The cost of the hash chain: audit appends (group-committed under the chain lock, SHA-256 chained)
 * against plain autocommit INSERTs of the same rows into an unchained table, both from 1 and from 32
 * concurrent callers on one pool.
 */
export async function auditBenchmark({ databaseUrl }: { databaseUrl: string }): Promise<ScenarioResult[]> {
  const database = connect(databaseUrl, { max: 32 });
  const run = Date.now();
  try {
    // Not a temporary table: every connection of the pool must see it (the scratch database is dropped).
    await database.sql`create table bench_plain_log (
      seq bigserial primary key, at timestamptz not null, actor text not null, action text not null,
      target_type text not null, target_id text not null, details jsonb not null, idempotency_key text not null unique)`;
    await concurrently(32, 32, () => database.sql`select 1`);
    const results: ScenarioResult[] = [];
    for (const [appenders, n] of [
      [1, 2000],
      [32, 8000],
    ] as const) {
      const baseline = await measure(`plain INSERT, ${appenders} concurrent`, n, () =>
        concurrently(appenders, n, (i) => {
          const details = JSON.stringify({ i });
          return database.sql`insert into bench_plain_log (at, actor, action, target_type, target_id, details, idempotency_key)
            values (now(), 'bench', 'bench.event', 'bench', ${String(i)}, ${details}::jsonb, ${`plain:${appenders}:${i}`})`;
        }),
      );
      const subject = await measure(`appendAudit, ${appenders} concurrent`, n, () =>
        concurrently(appenders, n, (i) =>
          appendAudit(database.db, {
            actor: 'bench',
            action: 'bench.event',
            targetType: 'bench',
            targetId: String(i),
            details: { i },
            idempotencyKey: `bench:${run}:${appenders}:${i}`,
          }),
        ),
      );
      results.push(compare(`audit append (${n} entries, ${appenders} concurrent appenders)`, baseline, subject));
    }
    return results;
  } finally {
    await database.close();
  }
}
