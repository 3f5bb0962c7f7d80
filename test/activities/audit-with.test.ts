import { eq } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { appendAuditWith, type WithEntries } from '../../activities/audit';
import { verifyAuditChain } from '../../activities/audit-verify';
import { createUser } from '../../activities/users';
import { users } from '../../db/schema';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { testAuditEntry } from '../helpers/audit';

let database: TestDatabase | undefined;
afterEach(async () => {
  await database?.drop();
  database = undefined;
});

/** A change to record: a user's name (any row would do). */
const rename =
  (id: string, name: string, fail = false): WithEntries =>
  async (tx) => {
    await tx.update(users).set({ name }).where(eq(users.id, id));
    if (fail) throw new Error('refused');
  };

const nameOf = async (d: TestDatabase, id: string) =>
  (await d.db.select({ name: users.name }).from(users).where(eq(users.id, id)))[0]?.name;

describe('appendAuditWith: a change and its entry commit as one', () => {
  it('commits 32 concurrent changes with their entries in shared group transactions', async () => {
    const d = (database = await createTestDatabase());
    const ids: string[] = [];
    for (let i = 0; i < 32; i++)
      ids.push((await createUser(d.db, { name: `u${i}`, role: 'responder' }, { actor: 'test' })).id);
    const before = (await verifyAuditChain(d.db)).entries;
    const records = await Promise.all(
      ids.map((id, i) => appendAuditWith(d.db, [testAuditEntry(1000 + i)], rename(id, `renamed ${i}`))),
    );
    expect(records.map(([r]) => r!.targetId)).toEqual(ids.map((_, i) => `t-${1000 + i}`));
    for (const [i, id] of ids.entries()) expect(await nameOf(d, id)).toBe(`renamed ${i}`);
    expect(new Set(records.map(([r]) => r!.at)).size).toBeLessThan(32);
    expect(await verifyAuditChain(d.db)).toMatchObject({ valid: true, entries: before + 32 });
  });

  it('rolls back only the change whose callback fails, with its entry; the rest of its group commits', async () => {
    const d = (database = await createTestDatabase());
    const ids: string[] = [];
    for (let i = 0; i < 8; i++)
      ids.push((await createUser(d.db, { name: `u${i}`, role: 'responder' }, { actor: 'test' })).id);
    const before = (await verifyAuditChain(d.db)).entries;
    const outcomes = await Promise.allSettled(
      ids.map((id, i) => appendAuditWith(d.db, [testAuditEntry(2000 + i)], rename(id, `renamed ${i}`, i === 3))),
    );
    expect(outcomes.map((o) => o.status)).toEqual(ids.map((_, i) => (i === 3 ? 'rejected' : 'fulfilled')));
    expect(await nameOf(d, ids[3]!)).toBe('u3');
    expect(await nameOf(d, ids[4]!)).toBe('renamed 4');
    expect(await verifyAuditChain(d.db)).toMatchObject({ valid: true, entries: before + 7 });
  });

  it('returns the entry already written to a retry, and runs the (idempotent) change again', async () => {
    const d = (database = await createTestDatabase());
    const { id } = await createUser(d.db, { name: 'u', role: 'responder' }, { actor: 'test' });
    const [first] = await appendAuditWith(d.db, [testAuditEntry(7)], rename(id, 'once'));
    const [again] = await appendAuditWith(d.db, [testAuditEntry(7)], rename(id, 'once'));
    expect(again).toEqual(first);
    expect(await nameOf(d, id)).toBe('once');
  });
});
