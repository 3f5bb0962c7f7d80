import { afterEach, describe, expect, it } from 'vitest';
import { appendAudit, verifyAuditChain, type AuditAppend } from '../../activities/audit';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

const entry = (n: number): AuditAppend => ({
  actor: 'user:test',
  action: 'test.event',
  targetType: 'test',
  targetId: `t-${n}`,
  details: { n },
  idempotencyKey: `test:${n}`,
});

let database: TestDatabase | undefined;
afterEach(async () => {
  await database?.drop();
  database = undefined;
});

const chainOf = async (length: number) => {
  database = await createTestDatabase();
  for (let n = 1; n <= length; n++) await appendAudit(database.db, entry(n));
  return database;
};

/** The append-only trigger stands in the way of tampering; an attacker with owner rights disables it first. */
const tamper = async (d: TestDatabase, statement: string) =>
  d.sql.begin(async (tx) => {
    await tx.unsafe('alter table audit_log disable trigger audit_log_append_only');
    await tx.unsafe(statement);
    await tx.unsafe('alter table audit_log enable trigger audit_log_append_only');
  });

describe('audit chain', () => {
  it('links each entry to the previous one and verifies', async () => {
    const d = await chainOf(8);
    const rows = await d.sql`select seq, prev_hash, hash from audit_log order by seq`;
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map(String));
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prev_hash).toBe(rows[i - 1]!.hash);
    const result = await verifyAuditChain(d.db);
    expect(result).toMatchObject({ valid: true, entries: 8, headHash: rows[7]!.hash });
  });

  it('refuses UPDATE, DELETE and TRUNCATE through the trigger', async () => {
    const d = await chainOf(2);
    await expect(d.sql`update audit_log set actor = 'x' where seq = 1`).rejects.toThrow(/append-only/);
    await expect(d.sql`delete from audit_log where seq = 2`).rejects.toThrow(/append-only/);
    await expect(d.sql`truncate audit_log`).rejects.toThrow(/append-only/);
    expect((await verifyAuditChain(d.db)).valid).toBe(true);
  });

  it('names an edited entry', async () => {
    const d = await chainOf(6);
    await tamper(d, `update audit_log set details = '{"n": 99}' where seq = 4`);
    expect(await verifyAuditChain(d.db)).toMatchObject({ valid: false, firstBrokenSeq: 4, entries: 3 });
  });

  it('names a deleted entry', async () => {
    const d = await chainOf(6);
    await tamper(d, 'delete from audit_log where seq = 3');
    expect(await verifyAuditChain(d.db)).toMatchObject({ valid: false, firstBrokenSeq: 3 });
  });

  it('names the first of two swapped entries', async () => {
    const d = await chainOf(6);
    await tamper(
      d,
      `update audit_log a set at = b.at, actor = b.actor, action = b.action, target_type = b.target_type,
         target_id = b.target_id, details = b.details, idempotency_key = b.idempotency_key || ':swap',
         prev_hash = b.prev_hash, hash = b.hash
       from audit_log b where (a.seq, b.seq) in ((2, 5), (5, 2))`,
    );
    expect(await verifyAuditChain(d.db)).toMatchObject({ valid: false, firstBrokenSeq: 2 });
  });

  it('names a truncated tail by its head hash only when the head is kept elsewhere', async () => {
    const d = await chainOf(5);
    const before = await verifyAuditChain(d.db);
    await tamper(d, 'delete from audit_log where seq = 5');
    const after = await verifyAuditChain(d.db);
    // A cut-off tail still forms a valid chain: the published head hash is what reveals it.
    expect(after.valid).toBe(true);
    expect(after.valid && before.valid && after.headHash).not.toBe(before.valid && before.headHash);
  });

  it('writes a retried append once', async () => {
    database = await createTestDatabase();
    const [a, b, c] = await Promise.all([1, 1, 1].map((n) => appendAudit(database!.db, entry(n))));
    expect(new Set([a!.seq, b!.seq, c!.seq])).toEqual(new Set([1]));
    const [{ count }] = (await database.sql`select count(*)::int as count from audit_log`) as unknown as [
      { count: number },
    ];
    expect(count).toBe(1);
  });

  it('serializes concurrent appends into one chain', async () => {
    database = await createTestDatabase();
    await Promise.all(Array.from({ length: 40 }, (_, i) => appendAudit(database!.db, entry(i + 1))));
    expect(await verifyAuditChain(database.db)).toMatchObject({ valid: true, entries: 40 });
  });
});
