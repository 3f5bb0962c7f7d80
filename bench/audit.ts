import { appendAudit } from '../activities/audit';
import { connect } from '../db/client';
import { compare, measure, type ScenarioResult } from './harness';

/**
 * The cost of the hash chain: appending N audit entries one by one (lock, read head, hash, insert)
 * against inserting the same rows one by one into an unchained table in the same database.
 */
export async function auditBenchmark({ databaseUrl }: { databaseUrl: string }, n = 2000): Promise<ScenarioResult> {
  const database = connect(databaseUrl, { max: 4 });
  try {
    await database.sql`create temporary table bench_plain_log (
      seq bigserial primary key, at timestamptz not null, actor text not null, action text not null,
      details jsonb not null, idempotency_key text not null unique)`;
    const baseline = await measure('plain INSERT per entry, no chain', n, async () => {
      for (let i = 0; i < n; i++) {
        await database.sql`insert into bench_plain_log (at, actor, action, details, idempotency_key)
          values (now(), 'bench', 'bench.event', ${JSON.stringify({ i })}::jsonb, ${`plain:${i}`})`;
      }
    });
    const run = Date.now();
    const subject = await measure('appendAudit (advisory lock, SHA-256 chain)', n, async () => {
      for (let i = 0; i < n; i++) {
        await appendAudit(database.db, {
          actor: 'bench',
          action: 'bench.event',
          targetType: 'bench',
          targetId: String(i),
          details: { i },
          idempotencyKey: `bench:${run}:${i}`,
        });
      }
    });
    return compare(`audit append (${n} sequential entries)`, baseline, subject);
  } finally {
    await database.close();
  }
}
