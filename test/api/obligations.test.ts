import { randomUUID } from 'node:crypto';
import type { Worker } from '@temporalio/worker';
import { and, eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertSchedules } from '../../activities/schedules';
import { auditLog, notifications } from '../../db/schema';
import { obligationsCheckWorkflowId } from '../../domain/ids';
import { addMonths, DEFAULT_OBLIGATIONS, type ObligationCheckResult } from '../../domain/obligations';
import { bearer, readJson, type Problem } from '../helpers/api';
import { seedStaff } from '../helpers/incidents';
import { createTestApp, createTestWorker, type TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';

interface Obligation {
  id: string;
  key: string;
  source: string;
  ownerId: string | null;
  recurrenceMonths: number;
  nextDueAt: string;
  status: 'scheduled' | 'due-soon' | 'overdue';
  lastCompletedAt: string | null;
}
interface Completion {
  id: string;
  dueAt: string;
  completedBy: string;
  evidenceNote: string | null;
  evidenceSha256: string | null;
  nextDueAt: string;
}

let api: TestApp;
let worker: Worker;
let running: Promise<void>;
type Staff = Awaited<ReturnType<typeof seedStaff>>;
let owner1: Staff;
let owner2: Staff;
let auditor: Staff;

const DAY = 86_400_000;

beforeAll(async () => {
  api = await createTestApp();
  worker = await createTestWorker(api);
  running = worker.run();
  const { db } = api.database;
  owner1 = await seedStaff(db, api.keyring, 'owner', 'owner 1');
  owner2 = await seedStaff(db, api.keyring, 'owner', 'owner 2');
  auditor = await seedStaff(db, api.keyring, 'auditor');
}, 120_000);
afterAll(async () => {
  for (const d of api?.schedules ?? [])
    await api.temporal.schedule
      .getHandle(d.scheduleId)
      .delete()
      .catch(() => {});
  worker?.shutdown();
  await running;
  await api?.close();
});

const request = (path: string, key: string, body?: unknown) =>
  api.app.request(path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: bearer(key),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
const list = async (key = owner1.key) =>
  (await readJson<{ items: Obligation[] }>(await request('/v1/obligations', key))).items;
const fieldsOf = async (res: Response) => {
  expect(res.status).toBe(400);
  return (await readJson<Problem>(res)).fields?.map((f) => f.path);
};
const runCheck = () =>
  api.temporal.workflow.execute('obligationsCheck', {
    taskQueue: api.config.TEMPORAL_TASK_QUEUE,
    workflowId: obligationsCheckWorkflowId(randomUUID()),
    args: [{ checkId: randomUUID(), requestedBy: 'test' }],
  }) as Promise<ObligationCheckResult>;
const outbox = (obligationId: string) =>
  api.database.db
    .select()
    .from(notifications)
    .where(like(notifications.idempotencyKey, `obligation:${obligationId}:%`));

describe('obligations', () => {
  it('seeds the calendar with its sources; auditors read it, only owners change it', async () => {
    const items = await list(auditor.key);
    expect(items.map((o) => o.key).sort()).toEqual(DEFAULT_OBLIGATIONS.map((o) => o.key).sort());
    const audit = items.find((o) => o.key === 'pi-compliance-audit')!;
    expect(audit).toMatchObject({ recurrenceMonths: 24, status: 'scheduled', ownerId: null });
    expect(audit.source).toContain('个人信息保护合规审计管理办法');
    expect(items.find((o) => o.key === 'pia-records-retention')!.source).toContain('PIPL Art. 55–56');
    // Seeding twice adds nothing.
    expect(await list()).toHaveLength(DEFAULT_OBLIGATIONS.length);
    expect((await request('/v1/obligations', auditor.key, { evidenceNote: 'x' })).status).toBe(403);
  });

  it('refuses bad input naming the field', async () => {
    const base = {
      key: 'vendor-review',
      title: 'Processor contract review',
      source: 'PIPL Art. 21',
      recurrenceMonths: 12,
      nextDueAt: new Date(Date.now() + 90 * DAY).toISOString(),
    };
    expect(await fieldsOf(await request('/v1/obligations', owner1.key, { ...base, recurrenceMonths: 0 }))).toEqual([
      'recurrenceMonths',
    ]);
    expect(await fieldsOf(await request('/v1/obligations', owner1.key, { ...base, title: 'a\u0000b' }))).toEqual([
      'title',
    ]);
    expect(await fieldsOf(await request('/v1/obligations', owner1.key, { ...base, ownerId: auditor.userId }))).toEqual([
      'ownerId',
    ]);
    const [seeded] = await list();
    const patch = (body: unknown, key = owner1.key) =>
      api.app.request(`/v1/obligations/${seeded!.id}`, {
        method: 'PATCH',
        headers: bearer(key),
        body: JSON.stringify(body),
      });
    expect(await fieldsOf(await patch({}))).toEqual(['body']);
    expect(await fieldsOf(await patch({ ownerId: auditor.userId }))).toEqual(['ownerId']);
    expect((await patch({ ownerId: owner2.userId }, auditor.key)).status).toBe(403);
    const due = new Date(Date.now() + 200 * DAY).toISOString();
    const moved = await patch({ ownerId: owner2.userId, nextDueAt: due, remindBefore: 'P60D' });
    expect(moved.status).toBe(200);
    expect(await readJson<Obligation>(moved)).toMatchObject({
      ownerId: owner2.userId,
      nextDueAt: due,
    });
    expect(await readJson<Obligation>(await patch({ ownerId: null }))).toMatchObject({ ownerId: null });
    const complete = (body: unknown) => request(`/v1/obligations/${seeded!.id}/complete`, owner1.key, body);
    expect(await fieldsOf(await complete({}))).toEqual(['evidenceNote']);
    expect(await fieldsOf(await complete({ evidenceSha256: 'abc' }))).toEqual(['evidenceSha256']);
    expect(
      (await request(`/v1/obligations/${randomUUID()}/complete`, owner1.key, { evidenceNote: 'done' })).status,
    ).toBe(404);
    expect((await request('/v1/obligations', owner1.key, base)).status).toBe(201);
    const again = await request('/v1/obligations', owner1.key, base);
    expect(again.status).toBe(409);
    expect((await readJson<Problem>(again)).code).toBe('obligation-exists');
  });

  it('reminds before the due date, tells the owner once overdue, and completion records evidence and moves the date', async () => {
    const overdueDue = new Date(Date.now() - DAY);
    const overdueRes = await request('/v1/obligations', owner1.key, {
      key: 'dpo-report',
      title: 'Yearly report of the personal-information protection officer',
      source: 'PIPL Art. 52',
      ownerId: owner1.userId,
      recurrenceMonths: 12,
      nextDueAt: overdueDue.toISOString(),
    });
    expect(overdueRes.status).toBe(201);
    const overdue = await readJson<Obligation>(overdueRes);
    expect(overdue.status).toBe('overdue');
    const soonRes = await request('/v1/obligations', owner1.key, {
      key: 'breach-drill',
      title: 'Incident-response drill',
      source: 'PIPL Art. 51',
      recurrenceMonths: 6,
      nextDueAt: new Date(Date.now() + DAY).toISOString(),
      remindBefore: 'P7D',
    });
    const soon = await readJson<Obligation>(soonRes);
    expect(soon.status).toBe('due-soon');

    const first = await runCheck();
    expect(first).toMatchObject({ obligations: 2, overdue: 1, reminded: 1, failed: 0 });
    // The overdue notice goes to its owner only; the reminder of an obligation without an owner to every owner.
    const overdueSent = await outbox(overdue.id);
    expect(overdueSent.map((n) => [n.template, n.recipientRef, n.status])).toEqual([
      ['obligation-overdue', `user:${owner1.userId}`, 'sent'],
    ]);
    const reminders = await outbox(soon.id);
    expect(reminders.map((n) => n.recipientRef).sort()).toEqual(
      [`user:${owner1.userId}`, `user:${owner2.userId}`].sort(),
    );
    expect(reminders.every((n) => n.template === 'obligation-reminder')).toBe(true);
    const [overdueAudit] = await api.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, 'obligation.overdue'), eq(auditLog.targetId, overdue.id)));
    expect(overdueAudit?.workflowId).toMatch(/^obligations-check-/);

    // A second check the same day sends nothing new.
    await runCheck();
    expect(await outbox(overdue.id)).toHaveLength(1);
    expect(await outbox(soon.id)).toHaveLength(2);

    const sha = 'AB'.repeat(32);
    const done = await request(`/v1/obligations/${overdue.id}/complete`, owner1.key, {
      evidenceNote: 'Report filed with the board, minutes ref. 2026-11',
      evidenceSha256: sha,
    });
    expect(done.status).toBe(200);
    const { obligation, completion } = await readJson<{ obligation: Obligation; completion: Completion }>(done);
    const nextDue = addMonths(overdueDue, 12).toISOString();
    expect(completion).toMatchObject({
      dueAt: overdueDue.toISOString(),
      completedBy: `user:${owner1.userId}`,
      evidenceSha256: sha.toLowerCase(),
      nextDueAt: nextDue,
    });
    expect(obligation).toMatchObject({ nextDueAt: nextDue, status: 'scheduled' });
    expect(obligation.lastCompletedAt).not.toBeNull();
    const detail = await readJson<Obligation & { completions: Completion[] }>(
      await request(`/v1/obligations/${overdue.id}`, auditor.key),
    );
    expect(detail.completions).toHaveLength(1);
    const [completed] = await api.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, 'obligation.completed'), eq(auditLog.targetId, overdue.id)));
    expect(completed).toMatchObject({
      actor: `user:${owner1.userId}`,
      apiKeyId: owner1.keyId,
      details: { late: true, evidenceSha256: sha.toLowerCase(), nextDueAt: nextDue },
    });
    // Once completed, the next check owes it nothing.
    const after = await runCheck();
    expect(after).toMatchObject({ obligations: 1, overdue: 0, reminded: 1 });
  }, 60_000);

  it('runs daily from its schedule; triggered through the API it starts obligations-check and records its counts', async () => {
    const admin = await seedStaff(api.database.db, api.keyring, 'admin');
    const declared = api.schedules.filter((d) => d.name === 'obligations-check');
    expect(declared[0]).toMatchObject({ workflowType: 'obligationsCheck', spec: { cron: '0 6 * * *' } });
    await upsertSchedules({ client: api.temporal, db: api.database.db }, declared);
    const triggered = await api.app.request('/v1/schedules/obligations-check/trigger', {
      method: 'POST',
      headers: bearer(admin.key),
    });
    expect(triggered.status).toBe(202);
    const run = await waitFor(async () => {
      const res = await api.app.request('/v1/schedules', { headers: bearer(admin.key) });
      const { schedules } = await readJson<{
        schedules: {
          id: string;
          lastRun: { status: string; result: { workflowId: string; result: unknown } } | null;
        }[];
      }>(res);
      const lastRun = schedules.find((x) => x.id === 'obligations-check')?.lastRun;
      return lastRun?.status === 'COMPLETED' ? lastRun : undefined;
    }, 'the triggered run');
    expect(run.result.workflowId).toMatch(/^obligations-check-/);
    expect(run.result.result).toMatchObject({ obligations: expect.any(Number), failed: 0 });
  }, 60_000);
});
