import { randomUUID } from 'node:crypto';
import type { Worker } from '@temporalio/worker';
import { asc, eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newSubject } from '../../activities/subject-writer';
import { notifications, subjectFields, subjectKeys, subjects } from '../../db/schema';
import { defaultCatalog } from '../../domain/catalog';
import { requestWorkflowId } from '../../domain/ids';
import { bearer, readJson } from '../helpers/api';
import { seedStaff } from '../helpers/incidents';
import { createTestApp, createTestWorker, type TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';

interface Detail {
  status: string;
  late: boolean;
  dueAt: string;
  timeLeftMs: number | null;
  outcome: string | null;
  clock: { reminders: string[]; pausedMs: number; paused: boolean };
  timeline: { type: string; at: string; details: Record<string, unknown> }[];
}

let api: TestApp;
let worker: Worker;
let running: Promise<void>;
let owner: Awaited<ReturnType<typeof seedStaff>>;
let assignee: Awaited<ReturnType<typeof seedStaff>>;

const seedSubject = async () => {
  const created = newSubject(
    defaultCatalog,
    api.keyring,
    { externalRef: `ext-${randomUUID()}`, jurisdiction: 'CN', locale: 'zh-CN', fields: {} },
    new Map([['email', `${randomUUID().slice(0, 8)}@mail.example`]]),
  );
  const db = api.database.db;
  await db.insert(subjects).values(created.subject);
  await db.insert(subjectKeys).values({
    subjectId: created.subject.id,
    keyVersion: 1,
    kekVersion: created.kekVersion,
    wrappedKey: created.wrappedKey,
  });
  await db.insert(subjectFields).values(created.fields.map((f) => ({ ...f, subjectId: created.subject.id })));
  return created.subject.id;
};

beforeAll(async () => {
  api = await createTestApp();
  worker = await createTestWorker(api);
  running = worker.run();
  owner = await seedStaff(api.database.db, api.keyring, 'owner');
  assignee = await seedStaff(api.database.db, api.keyring, 'owner');
}, 120_000);
afterAll(async () => {
  worker?.shutdown();
  await running;
  await api?.close();
});

const file = async (body: Record<string, unknown>) => {
  const res = await api.app.request('/v1/requests', {
    method: 'POST',
    headers: bearer(owner.key),
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(202);
  return (await readJson<{ id: string }>(res)).id;
};
const get = async (id: string) =>
  readJson<Detail>(await api.app.request(`/v1/requests/${id}`, { headers: bearer(owner.key) }));
const post = (id: string, path: string, body?: unknown) =>
  api.app.request(`/v1/requests/${id}/${path}`, {
    method: 'POST',
    headers: bearer(owner.key),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
const VERIFIED = { method: 'known-contact', reference: 'call-back on file number' };

describe('a request’s clock', () => {
  it('reminds the assignee at 50, 75 and 90 % and escalates the overdue request to the owners, in order, once each', async () => {
    const subjectId = await seedSubject();
    const id = await file({
      type: 'access',
      subject: { id: subjectId },
      verification: VERIFIED,
      clock: { window: '8 seconds' },
    });
    await waitFor(
      async () => ((await api.app.request(`/v1/requests/${id}`, { headers: bearer(owner.key) })).ok ? true : undefined),
      'filed',
    );
    expect((await post(id, 'assign', { assignee: assignee.userId })).status).toBe(200);
    const late = await waitFor(async () => {
      const r = await get(id);
      return r.late && r.clock.reminders.includes('overdue') ? r : undefined;
    }, 'overdue');
    expect(late.clock.reminders).toEqual(['reminder-50', 'reminder-75', 'reminder-90', 'overdue']);
    const clockEvents = late.timeline.filter((e) => e.type === 'reminder' || e.type === 'overdue');
    expect(clockEvents.map((e) => e.details.mark)).toEqual(['reminder-50', 'reminder-75', 'reminder-90', 'overdue']);
    const at = clockEvents.map((e) => Date.parse(e.at));
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    const received = Date.parse(late.timeline[0]!.at);
    expect(at[0]! - received).toBeGreaterThanOrEqual(3_900);
    expect(at[3]! - received).toBeGreaterThanOrEqual(7_900);
    const messages = await api.database.db
      .select()
      .from(notifications)
      .where(like(notifications.idempotencyKey, `${requestWorkflowId(id)}:clock-%`))
      .orderBy(asc(notifications.createdAt));
    // Reminders to the assignee only; the overdue escalation to every owner (the assignee is one) once each.
    const rows = messages.map((m) => [m.idempotencyKey.split(':')[1], m.recipientRef, m.status]);
    expect(rows.slice(0, 3)).toEqual([
      ['clock-reminder-50', `user:${assignee.userId}`, 'sent'],
      ['clock-reminder-75', `user:${assignee.userId}`, 'sent'],
      ['clock-reminder-90', `user:${assignee.userId}`, 'sent'],
    ]);
    expect(rows.slice(3).sort()).toEqual(
      [owner.userId, assignee.userId].map((u) => ['clock-overdue', `user:${u}`, 'sent']).sort(),
    );
    const listed = await readJson<{ requests: { id: string }[] }>(
      await api.app.request('/v1/requests?overdue=true', { headers: bearer(owner.key) }),
    );
    expect(listed.requests.map((r) => r.id)).toContain(id);
    expect((await post(id, 'fulfil', { delivery: 'password' })).status).toBe(200);
    expect((await get(id)).late).toBe(true);
  });

  it('a paused request stops its clock and resumes with the time it had left', async () => {
    const subjectId = await seedSubject();
    const id = await file({
      type: 'access',
      subject: { id: subjectId },
      verification: VERIFIED,
      clock: { window: '20 seconds' },
    });
    await waitFor(
      async () => ((await api.app.request(`/v1/requests/${id}`, { headers: bearer(owner.key) })).ok ? true : undefined),
      'filed',
    );
    const pausedAt = Date.now();
    const paused = await post(id, 'pause', { reason: 'Waiting for the subject to name the accounts' });
    expect(paused.status).toBe(200);
    const atPause = await readJson<{ timeLeftMs: number; dueAt: string }>(paused);
    expect(atPause.timeLeftMs).toBeGreaterThan(15_000);
    const first = await get(id);
    // Past the 50 % mark of the original window while paused: nothing fires, and the time left stands still.
    await waitFor(
      async () => (Date.now() - Math.max(pausedAt, Date.parse(first.timeline[0]!.at)) > 11_000 ? true : undefined),
      'past 50 %',
    );
    const still = await get(id);
    expect(still).toMatchObject({ status: 'paused', clock: { paused: true, reminders: [] } });
    expect(Math.abs(still.timeLeftMs! - first.timeLeftMs!)).toBeLessThan(500);
    expect((await post(id, 'pause', { reason: 'again' })).status).toBe(409);
    const resumed = await readJson<{ timeLeftMs: number; dueAt: string; status: string }>(await post(id, 'resume'));
    expect(resumed.status).toBe('open');
    expect(Math.abs(resumed.timeLeftMs - atPause.timeLeftMs)).toBeLessThan(1_000);
    expect(Date.parse(resumed.dueAt) - Date.parse(atPause.dueAt)).toBeGreaterThan(10_000);
    const after = await get(id);
    expect(after.clock.pausedMs).toBeGreaterThan(10_000);
    expect(after.clock.reminders).toEqual([]);
    // The 50 % mark now falls half the window after receipt plus the pause.
    const reminded = await waitFor(async () => {
      const r = await get(id);
      return r.clock.reminders.length > 0 ? r : undefined;
    }, 'first reminder after resume');
    const mark = reminded.timeline.find((e) => e.type === 'reminder')!;
    expect(Date.parse(mark.at) - Date.parse(reminded.timeline[0]!.at)).toBeGreaterThanOrEqual(
      10_000 + after.clock.pausedMs - 200,
    );
    expect((await post(id, 'fulfil', { delivery: 'password' })).status).toBe(200);
  });

  it('an unverified request expires with the reason recorded, and the subject is told', async () => {
    const subjectId = await seedSubject();
    const id = await file({
      type: 'access',
      subject: { id: subjectId },
      clock: { window: '20 seconds', verifyWithin: '2 seconds' },
    });
    const expired = await waitFor(async () => {
      const r = await get(id);
      return r.status === 'expired' ? r : undefined;
    }, 'expired');
    expect(expired.outcome).toBe('identity-not-verified');
    expect(expired.timeline.find((e) => e.type === 'expired')!.details).toMatchObject({
      reason: 'identity-not-verified',
    });
    const sent = await api.database.db
      .select()
      .from(notifications)
      .where(like(notifications.idempotencyKey, `${requestWorkflowId(id)}:subject-%`));
    expect(sent.map((m) => m.idempotencyKey.split(':')[1]).sort()).toEqual(['subject-closed', 'subject-verify']);
    expect((await post(id, 'verify', VERIFIED)).status).toBe(409);
    expect((await api.database.db.select().from(subjects).where(eq(subjects.id, subjectId)))[0]!.status).toBe('active');
  });
});
