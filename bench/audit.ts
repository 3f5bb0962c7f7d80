import { appendAudit } from '../activities/audit';
import { connect } from '../db/client';
import { compare, type Measurement, type ScenarioResult } from './harness';

/** Runs `count` calls of `op` (numbered from `from`) from `callers` concurrent callers, each awaiting its own. */
const concurrently = (callers: number, from: number, count: number, op: (i: number) => Promise<unknown>) =>
  Promise.all(
    Array.from({ length: callers }, async (_, first) => {
      for (let i = first; i < count; i += callers) await op(from + i);
    }),
  );

/**
 * Baseline and subject take turns in rounds and their times are summed, so load from other processes on a
 * shared machine falls on both alike rather than on whichever happened to run during it.
 */
const interleaved = async (
  rounds: number,
  perRound: number,
  baseline: { label: string; run: (from: number, count: number) => Promise<unknown> },
  subject: { label: string; run: (from: number, count: number) => Promise<unknown> },
): Promise<[Measurement, Measurement]> => {
  const seconds = [0, 0];
  for (let round = 0; round < rounds; round++) {
    for (const [k, side] of [baseline, subject].entries()) {
      const started = performance.now();
      await side.run(round * perRound, perRound);
      seconds[k]! += (performance.now() - started) / 1000;
    }
  }
  const operations = rounds * perRound;
  return [
    { label: baseline.label, perSecond: operations / seconds[0]! },
    { label: subject.label, perSecond: operations / seconds[1]! },
  ];
};

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
    await concurrently(32, 0, 32, () => database.sql`select 1`);
    const results: ScenarioResult[] = [];
    for (const [callers, perRound] of [
      [1, 400],
      [32, 1600],
    ] as const) {
      const rounds = 5;
      const [baseline, subject] = await interleaved(
        rounds,
        perRound,
        {
          label: `plain INSERT, ${callers} concurrent`,
          run: (from, count) =>
            concurrently(callers, from, count, (i) => {
              const details = JSON.stringify({ i });
              return database.sql`insert into bench_plain_log (at, actor, action, target_type, target_id, details, idempotency_key)
                values (now(), 'bench', 'bench.event', 'bench', ${String(i)}, ${details}::jsonb, ${`plain:${callers}:${i}`})`;
            }),
        },
        {
          label: `appendAudit, ${callers} concurrent`,
          run: (from, count) =>
            concurrently(callers, from, count, (i) =>
              appendAudit(database.db, {
                actor: 'bench',
                action: 'bench.event',
                targetType: 'bench',
                targetId: String(i),
                details: { i },
                idempotencyKey: `bench:${run}:${callers}:${i}`,
              }),
            ),
        },
      );
      const name = `audit append (${rounds * perRound} entries, ${callers} concurrent callers, interleaved)`;
      results.push(compare(name, baseline, subject));
    }
    return results;
  } finally {
    await database.close();
  }
}
