import { randomUUID } from 'node:crypto';
import type { Worker } from '@temporalio/worker';
import { eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { insertNewSubjects, newSubject, rawSql } from '../../activities/subject-writer';
import { destructionCertificates, destructions, subjectFields, subjects } from '../../db/schema';
import { destructionWorkflowId, retentionSweepWorkflowId } from '../../domain/ids';
import type { DestructionOutcome } from '../../domain/destruction';
import { retentionSweep } from '../../workflows';
import { catalogWith } from '../helpers/catalog';
import { createTestServices, createTestWorker, type TestServices } from '../helpers/services';
import { waitFor } from '../helpers/wait';

// A credit bureau's negative record: kept 5 years from the end of the adverse event (征信业管理条例 Art. 16).
const catalog = catalogWith({
  adverse_event_end: { classification: 'general', purposes: ['credit-assessment'], retention: 'P10Y' },
  negative_record: {
    classification: 'personal',
    purposes: ['credit-assessment'],
    retention: 'P5Y',
    retentionFrom: 'adverse_event_end',
  },
});

let s: TestServices;
let worker: Worker;
let running: Promise<void>;

beforeAll(async () => {
  s = await createTestServices({ services: { catalog } });
  worker = await createTestWorker(s);
  running = worker.run();
}, 120_000);
afterAll(async () => {
  worker?.shutdown();
  await running;
  await s?.close();
});

/** Subjects with a retention date and, optionally, a negative record whose adverse event ended on `eventEnd`. */
const seed = async (rows: { retentionUntil: string | null; eventEnd?: string; held?: boolean }[]) => {
  const created = rows.map((r, i) =>
    newSubject(
      catalog,
      s.keyring,
      {
        externalRef: `SWEEP-${randomUUID().slice(0, 8)}-${i}`,
        jurisdiction: 'CN',
        locale: 'zh-CN',
        fields: {},
        ...(r.retentionUntil ? { retentionUntil: r.retentionUntil } : {}),
      },
      new Map([
        ['name', `Sweep Person ${i}`],
        ...(r.eventEnd
          ? ([
              ['adverse_event_end', r.eventEnd],
              ['negative_record', 'overdue 90 days'],
            ] as [string, string][])
          : []),
      ]),
    ),
  );
  await rawSql(s.database.db).begin((tx) => insertNewSubjects(tx, `sweep-${randomUUID()}`, created));
  const ids = created.map((c) => c.subject.id);
  const held = ids.filter((_, i) => rows[i]!.held);
  if (held.length) await s.database.db.update(subjects).set({ legalHold: true }).where(inArray(subjects.id, held));
  return ids;
};

const sweep = (o: { autoApprove: boolean }) => {
  const sweepId = randomUUID();
  const destructionId = randomUUID();
  return s.temporal.workflow.execute(retentionSweep, {
    taskQueue: s.config.TEMPORAL_TASK_QUEUE,
    workflowId: retentionSweepWorkflowId(sweepId),
    args: [
      {
        sweepId,
        destructionId,
        requestedBy: 'schedule:retention-sweep',
        approvalWindowMs: 60_000,
        graceMs: 0,
        autoApprove: o.autoApprove,
      },
    ],
  });
};

it('picks exactly the expired, unheld subjects and expired field values, in one request', async () => {
  const [expired1, expired2, future, none, heldExpired, oldEvent, recentEvent] = await seed([
    { retentionUntil: '2020-01-01' },
    { retentionUntil: '2024-06-30' },
    { retentionUntil: '2999-01-01' },
    { retentionUntil: null },
    { retentionUntil: '2020-01-01', held: true },
    { retentionUntil: '2999-01-01', eventEnd: '2015-03-01' },
    { retentionUntil: '2999-01-01', eventEnd: '2024-03-01' },
  ]);
  const result = await sweep({ autoApprove: true });
  expect(result).toMatchObject({ matched: 4, held: 1, targeted: 3, autoApproved: true });
  const handle = s.temporal.workflow.getHandle(destructionWorkflowId(result.destructionId!));
  const outcome = (await handle.result()) as DestructionOutcome;
  expect(outcome.status).toBe('completed');

  const db = s.database.db;
  const statuses = Object.fromEntries(
    (
      await db
        .select()
        .from(subjects)
        .where(inArray(subjects.id, [expired1!, expired2!, future!, none!, heldExpired!, oldEvent!, recentEvent!]))
    ).map((r) => [r.id, r.status]),
  );
  expect(statuses).toEqual({
    [expired1!]: 'destroyed',
    [expired2!]: 'destroyed',
    [future!]: 'active',
    [none!]: 'active',
    [heldExpired!]: 'active',
    [oldEvent!]: 'active',
    [recentEvent!]: 'active',
  });
  // The old adverse event's negative record went; the subject, its other fields and the recent record stayed.
  const fieldsOf = async (id: string) =>
    (await db.select().from(subjectFields).where(eq(subjectFields.subjectId, id))).map((f) => f.field).sort();
  expect(await fieldsOf(oldEvent!)).toEqual(['adverse_event_end', 'name']);
  expect(await fieldsOf(recentEvent!)).toEqual(['adverse_event_end', 'name', 'negative_record']);

  const [row] = await db.select().from(destructions).where(eq(destructions.id, result.destructionId!));
  expect(row).toMatchObject({ autoApproved: true, origin: { kind: 'sweep' }, requestedBy: 'schedule:retention-sweep' });
  const [cert] = await db
    .select()
    .from(destructionCertificates)
    .where(eq(destructionCertificates.destructionId, result.destructionId!));
  expect(cert!.certificate).toMatchObject({
    approvals: { automatic: true },
    sanitization: { subjectsDestroyed: 2, subjectsWithFieldsDeleted: 1, fieldsDeleted: { negative_record: 1 } },
  });
});

it('without automatic approval the request waits for approvers; with nothing due no request is opened', async () => {
  await seed([{ retentionUntil: '2021-01-01' }]);
  const result = await sweep({ autoApprove: false });
  expect(result).toMatchObject({ targeted: 1, autoApproved: false });
  const handle = s.temporal.workflow.getHandle(destructionWorkflowId(result.destructionId!));
  await waitFor(async () => {
    const [row] = await s.database.db.select().from(destructions).where(eq(destructions.id, result.destructionId!));
    return row?.status === 'awaiting-approval' && row.approvalDeadline ? row : undefined;
  }, 'the request awaiting approval');
  await handle.terminate('test over');
  await s.database.db.execute(sql`update subjects set retention_until = null where status <> 'destroyed'`);
  expect(await sweep({ autoApprove: true })).toMatchObject({ matched: 0, targeted: 0, destructionId: null });
});
