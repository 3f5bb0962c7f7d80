import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { appendAudit, appendAuditEntries, GENESIS_HASH } from '../../activities/audit';
import { verifyAuditChain } from '../../activities/audit-verify';
import { canonicalJson } from '../../domain/canonical-json';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { testAuditEntry } from '../helpers/audit';

let database: TestDatabase | undefined;
afterEach(async () => {
  await database?.drop();
  database = undefined;
});

const chainOf = async (length: number) => {
  database = await createTestDatabase();
  for (let n = 1; n <= length; n++) await appendAudit(database.db, testAuditEntry(n));
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
    const [a, b, c] = await Promise.all([1, 1, 1].map((n) => appendAudit(database!.db, testAuditEntry(n))));
    expect(new Set([a!.seq, b!.seq, c!.seq])).toEqual(new Set([1]));
    const [{ count }] = (await database.sql`select count(*)::int as count from audit_log`) as unknown as [
      { count: number },
    ];
    expect(count).toBe(1);
  });

  it('serializes concurrent appends into one chain', async () => {
    database = await createTestDatabase();
    await Promise.all(Array.from({ length: 40 }, (_, i) => appendAudit(database!.db, testAuditEntry(i + 1))));
    expect(await verifyAuditChain(database.db)).toMatchObject({ valid: true, entries: 40 });
  });

  it('gives each of 32 concurrent appenders its own entry in one gap-free chain, sharing commits', async () => {
    database = await createTestDatabase();
    const records = await Promise.all(
      Array.from({ length: 32 }, (_, i) => appendAudit(database!.db, testAuditEntry(i + 1))),
    );
    records.forEach((record, i) => expect(record).toMatchObject({ targetId: `t-${i + 1}`, details: { n: i + 1 } }));
    expect(records.map((r) => r.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 32 }, (_, i) => i + 1));
    // Entries of one group commit share their time: fewer distinct times than appenders proves the grouping.
    expect(new Set(records.map((r) => r.at)).size).toBeLessThan(32);
    expect(await verifyAuditChain(database.db)).toMatchObject({ valid: true, entries: 32 });
  });

  it('returns the first entry to a retried idempotency key, inside and across groups', async () => {
    database = await createTestDatabase();
    const first = await appendAudit(database.db, testAuditEntry(1));
    const retried = await Promise.all(
      Array.from({ length: 32 }, (_, i) => appendAudit(database!.db, testAuditEntry(i % 2 ? 1 : 100 + (i % 4)))),
    );
    for (const [i, record] of retried.entries()) {
      if (i % 2) expect(record).toEqual(first);
      else expect(record.idempotencyKey).toBe(`test:${100 + (i % 4)}`);
    }
    expect(new Set(retried.filter((_, i) => i % 2 === 0).map((r) => r.seq)).size).toBe(2);
    expect(await verifyAuditChain(database.db)).toMatchObject({ valid: true, entries: 3 });
  });

  it('fails only the caller whose entry the database refuses', async () => {
    database = await createTestDatabase();
    // PostgreSQL refuses NUL in text, so this entry aborts whichever group transaction carries it.
    const refused = { ...testAuditEntry(5), actor: 'bad\u0000actor' };
    const outcomes = await Promise.allSettled(
      Array.from({ length: 32 }, (_, i) => appendAudit(database!.db, i === 4 ? refused : testAuditEntry(i + 1))),
    );
    expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(1);
    expect(outcomes[4]!.status).toBe('rejected');
    expect(await verifyAuditChain(database.db)).toMatchObject({ valid: true, entries: 31 });
  });

  it('appends several entries at once, in order, and recognises the ones already written', async () => {
    database = await createTestDatabase();
    const before = await appendAudit(database.db, testAuditEntry(2));
    const records = await appendAuditEntries(database.db, [
      testAuditEntry(1),
      testAuditEntry(2),
      testAuditEntry(3),
      testAuditEntry(3),
    ]);
    expect(records.map((r) => r.seq)).toEqual([2, before.seq, 3, 3]);
    expect(records.map((r) => r.targetId)).toEqual(['t-1', 't-2', 't-3', 't-3']);
    expect(await verifyAuditChain(database.db)).toMatchObject({ valid: true, entries: 3 });
  });

  it("appends inside the caller's transaction, and not at all when it rolls back", async () => {
    database = await createTestDatabase();
    const d = database;
    await expect(
      d.db.transaction(async (tx) => {
        await appendAudit(tx, testAuditEntry(1));
        throw new Error('the record write failed');
      }),
    ).rejects.toThrow('the record write failed');
    expect(await d.sql`select seq from audit_log`).toHaveLength(0);
    const committed = await d.db.transaction((tx) => appendAudit(tx, testAuditEntry(2)));
    expect(committed.seq).toBe(1);
    expect(await verifyAuditChain(d.db)).toMatchObject({ valid: true, entries: 1 });
  });

  it('hashes the API key ID when set, and entries without one as they were hashed before it existed', async () => {
    database = await createTestDatabase();
    const withoutKey = await appendAudit(database.db, testAuditEntry(1));
    const withKey = await appendAudit(database.db, { ...testAuditEntry(2), apiKeyId: 'key-1' });
    expect(withKey.apiKeyId).toBe('key-1');
    // The content hashed before api_key_id was added: an entry without a key must hash exactly so.
    const { seq, at, actor, action, targetType, targetId, workflowId, runId, details, idempotencyKey } = withoutKey;
    const legacy = canonicalJson({
      seq,
      at,
      actor,
      action,
      targetType,
      targetId,
      workflowId,
      runId,
      details,
      idempotencyKey,
    });
    expect(withoutKey.hash).toBe(createHash('sha256').update(`${GENESIS_HASH}\n${legacy}`).digest('hex'));
    expect(await verifyAuditChain(database.db)).toMatchObject({ valid: true, entries: 2 });

    await tamper(database, `update audit_log set api_key_id = 'key-2' where seq = 2`);
    expect(await verifyAuditChain(database.db)).toMatchObject({ valid: false, firstBrokenSeq: 2 });
  });

  it('names an API key ID added to an entry written without one', async () => {
    const d = await chainOf(3);
    await tamper(d, `update audit_log set api_key_id = 'key-9' where seq = 2`);
    expect(await verifyAuditChain(d.db)).toMatchObject({ valid: false, firstBrokenSeq: 2 });
  });
});
