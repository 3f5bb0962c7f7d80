import { createHash, randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDestruction } from '../../activities/destruction-records';
import {
  FIRST_BATCH,
  planBatches,
  shredDestruction,
  verifyDestruction,
  type ShredTotals,
} from '../../activities/destruction-shred';
import { externalRefTombstone } from '../../activities/destruction-tombstone';
import { pgArray } from '../../activities/subject-writer';
import { auditLog, destructionBatches, subjectFields, subjectKeys, subjects } from '../../db/schema';
import { defaultCatalog } from '../../domain/catalog';
import { destructionWorkflowId } from '../../domain/ids';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { seedSubjects } from '../helpers/backups';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

const keyring = parseKeyring(generateKeyFile(), 'test');
let database: TestDatabase;
let d: { db: TestDatabase['db']; keyring: typeof keyring; catalog: typeof defaultCatalog; clock: () => Date };

beforeAll(async () => {
  database = await createTestDatabase();
  d = { db: database.db, keyring, catalog: defaultCatalog, clock: () => new Date() };
});
afterAll(() => database?.drop());

/** An activity context of the destruction's workflow, as the worker gives one. */
const inWorkflow = (destructionId: string) =>
  new MockActivityEnvironment({
    workflowExecution: { workflowId: destructionWorkflowId(destructionId), runId: randomUUID() },
  });

const targets = async (destructionId: string, ids: string[]) =>
  database.db.execute(sql`
    insert into destruction_targets (destruction_id, subject_id, fields)
    select ${destructionId}::uuid, u.id, null from unnest(${pgArray(ids)}::uuid[]) as u(id)`);

describe('destruction batches', () => {
  it('plans the boundaries a pass from the first batch finds: every size-th target, the last one, no empty batch', async () => {
    for (const [count, size] of [
      [23, 5],
      [20, 5],
      [3, 5000],
      [1, 1],
    ] as const) {
      const destructionId = randomUUID();
      const ids = Array.from({ length: count }, () => randomUUID());
      await targets(destructionId, ids);
      const sorted = [...ids].sort();
      const ends = sorted.filter((_, i) => (i + 1) % size === 0 || i === count - 1);
      expect(await planBatches(database.db, destructionId, size)).toEqual(
        ends.map((lastSubjectId, i) => ({ startAfter: i === 0 ? FIRST_BATCH : ends[i - 1], lastSubjectId })),
      );
    }
  });

  it('shreds batches four at a time with exact counts, one audit entry per batch, a key digest in batch order; a retry changes nothing', async () => {
    const seeded = await seedSubjects(database, keyring, 1000);
    const [held, gone] = [seeded.ids[137]!, seeded.ids[611]!];
    const destructionId = randomUUID();
    const env = inWorkflow(destructionId);
    await env.run(() =>
      openDestruction(d, {
        destructionId,
        scope: { kind: 'subjects', subjectIds: seeded.ids },
        reason: 'retention over',
        requestedBy: 'user:requester',
        approvalWindowMs: 60_000,
        graceMs: 0,
      }),
    );
    // After the request opened: one subject placed under hold, one destroyed by another request meanwhile.
    await database.db.update(subjects).set({ legalHold: true }).where(eq(subjects.id, held));
    await database.db
      .update(subjects)
      .set({ status: 'destroyed', externalRef: externalRefTombstone(keyring, `gone-${gone}`) })
      .where(eq(subjects.id, gone));
    await database.db.delete(subjectKeys).where(eq(subjectKeys.subjectId, gone));
    await database.db.delete(subjectFields).where(eq(subjectFields.subjectId, gone));
    const keysBefore = await database.db
      .select({ subjectId: subjectKeys.subjectId, keyVersion: subjectKeys.keyVersion })
      .from(subjectKeys)
      .where(inArray(subjectKeys.subjectId, seeded.ids));

    const totals: ShredTotals = await env.run(() => shredDestruction(d, destructionId, 100, 4));

    expect(totals).toMatchObject({ subjects: 998, keys: 998, fieldRows: 4 * 998, batches: 10 });
    const plan = await planBatches(database.db, destructionId, 100);
    const batchDigests = plan.map(({ startAfter, lastSubjectId }) => {
      const ids = keysBefore
        .filter((k) => k.subjectId > startAfter && k.subjectId <= lastSubjectId && k.subjectId !== held)
        .map((k) => `${k.subjectId}:${k.keyVersion}`)
        .sort();
      return createHash('sha256').update(ids.join('\n')).digest('hex');
    });
    const rows = await database.db
      .select()
      .from(destructionBatches)
      .where(eq(destructionBatches.destructionId, destructionId));
    expect(rows.map((r) => r.keyIdsSha256).sort()).toEqual([...batchDigests].sort());
    expect(totals.keyIdsSha256).toBe(
      createHash('sha256')
        .update(batchDigests.map((x) => `${x}\n`).join(''))
        .digest('hex'),
    );
    const audited = () =>
      database.db
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.targetId, destructionId), eq(auditLog.action, 'destruction.batch-shredded')));
    const entries = await audited();
    expect(entries).toHaveLength(10);
    expect(entries.reduce((n, e) => n + (e.details.skipped as number), 0)).toBe(2);
    expect(new Set(entries.map((e) => e.workflowId))).toEqual(new Set([destructionWorkflowId(destructionId)]));

    const [left] = await database.db.execute<{ keys: number; alive: number; held: number }>(sql`
      select (select count(*) from subject_keys where subject_id = any(${pgArray(seeded.ids)}::uuid[]))::int as keys,
        (select count(*) from subjects where id = any(${pgArray(seeded.ids)}::uuid[]) and status <> 'destroyed')::int as alive,
        (select count(*) from subject_fields where subject_id = ${held})::int as held`);
    expect(left).toEqual({ keys: 1, alive: 1, held: 4 });

    expect(await env.run(() => shredDestruction(d, destructionId, 100, 4))).toEqual(totals);
    expect(await audited()).toHaveLength(10);

    const verification = await verifyDestruction(d, destructionId, 3);
    expect(verification).toMatchObject({
      passed: true,
      checked: 1000,
      heldAtShred: 1,
      keysRemaining: 0,
      fieldRowsRemaining: 0,
      decryptable: 0,
      notTombstoned: 0,
    });
    expect(await verifyDestruction(d, destructionId, 1)).toEqual(verification);

    // A wrapped key back for the first and the last destroyed target: the open-ended outer ranges find both.
    const destroyed = seeded.ids.filter((id) => id !== held).sort();
    for (const subjectId of [destroyed[0]!, destroyed.at(-1)!])
      await database.db
        .insert(subjectKeys)
        .values({ subjectId, keyVersion: 1, kekVersion: 1, wrappedKey: Buffer.alloc(40) });
    expect(await verifyDestruction(d, destructionId, 3)).toMatchObject({
      passed: false,
      keysRemaining: 2,
      decryptable: 2,
    });
  });
});
