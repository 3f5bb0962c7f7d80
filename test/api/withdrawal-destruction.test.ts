import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { withdrawalDestructionId } from '../../activities/withdrawal-destruction';
import { auditLog, destructions, subjects } from '../../db/schema';
import { defaultCatalog, mergeCatalog } from '../../domain/catalog';
import { consentWorkflowId, destructionWorkflowId } from '../../domain/ids';
import { newSubject } from '../../activities/subject-writer';
import { bearer, readJson, seedPrincipal } from '../helpers/api';
import { insertNewSubject, insertNotice } from '../helpers/notifications';
import { createTestApp, createTestWorker, type TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';

/** `newsletter` rests on consent alone, and only `newsletterEmail` serves it; `name` also serves a contract. */
const catalog = mergeCatalog(defaultCatalog, {
  purposes: { newsletter: { legalBasis: 'consent' } },
  fields: {
    newsletterEmail: { classification: 'personal', purposes: ['newsletter'], retention: 'P1Y', blindIndex: false },
  },
});

type Principal = Awaited<ReturnType<typeof seedPrincipal>>;
let api: TestApp;
let off: TestApp;
let workers: Worker[];
let running: Promise<void>[];
let owner: Principal;
let approverA: Principal;
let approverB: Principal;
let newsletterNotice: string;
let marketingNotice: string;

beforeAll(async () => {
  api = await createTestApp({
    services: { catalog },
    config: { CUSTODIAN_DESTRUCTION_APPROVAL_WINDOW: 60_000, CUSTODIAN_DESTRUCTION_GRACE: 1000 },
  });
  // The same database and dev server, its own task queue and worker, with the option turned off.
  off = await createTestApp({
    database: api.testDatabase,
    temporal: api.testTemporal,
    services: { catalog },
    config: { CUSTODIAN_DESTRUCTION_ON_CONSENT_WITHDRAWAL: false },
  });
  workers = await Promise.all([createTestWorker(api), createTestWorker(off)]);
  running = workers.map((w) => w.run());
  const db = api.database.db;
  owner = await seedPrincipal(db, 'owner');
  approverA = await seedPrincipal(db, 'approver', 'approver A');
  approverB = await seedPrincipal(db, 'approver', 'approver B');
  newsletterNotice = await insertNotice(db, { purpose: 'newsletter' });
  marketingNotice = await insertNotice(db);
}, 120_000);
afterAll(async () => {
  for (const w of workers ?? []) w.shutdown();
  await Promise.all(running ?? []);
  await off?.close();
  await api?.close();
});

const post = (app: TestApp, path: string, key: string, body: unknown) =>
  app.app.request(`/v1${path}`, { method: 'POST', headers: bearer(key), body: JSON.stringify(body) });

const insertSubject = async (values: Record<string, string>) => {
  const created = newSubject(
    catalog,
    api.keyring,
    { externalRef: `ext-${randomUUID()}`, jurisdiction: 'CN', locale: 'zh-CN', fields: {} },
    new Map(Object.entries(values)),
  );
  return insertNewSubject(api.database.db, created);
};

/** A consent requested, granted and withdrawn through the API; the withdrawal's answer is 200. */
const grantedThenWithdrawn = async (app: TestApp, subjectId: string, noticeId: string) => {
  const res = await post(app, '/consents', owner.key, {
    subjectId,
    noticeId,
    channel: 'email',
    respondWithin: '60 seconds',
    remindEvery: '30 seconds',
    maxReminders: 1,
    validFor: 'P1D',
  });
  expect(res.status).toBe(202);
  const { id } = await readJson<{ id: string }>(res);
  expect((await post(app, `/consents/${id}/decisions`, owner.key, { decision: 'grant' })).status).toBe(200);
  expect((await post(app, `/consents/${id}/withdraw`, owner.key, {})).status).toBe(200);
  return id;
};

const requestsOf = (consentId: string) =>
  api.database.db
    .select()
    .from(destructions)
    .where(sql`${destructions.origin} ->> 'consentId' = ${consentId}`);
const opened = (consentId: string) =>
  waitFor(async () => {
    const [row] = await requestsOf(consentId);
    return row;
  }, `the destruction of consent ${consentId}`);
const erasureAudit = (consentId: string) =>
  api.database.db
    .select()
    .from(auditLog)
    .where(and(eq(auditLog.targetId, consentId), eq(auditLog.action, 'consent.erasure-requested')));

describe('a withdrawn consent that was the only legal basis', () => {
  it('opens exactly one request linked to the consent, requested by the system, approved by any two approvers', async () => {
    const subjectId = await insertSubject({ newsletterEmail: 'fang@example.cn' });
    const consentId = await grantedThenWithdrawn(api, subjectId, newsletterNotice);
    const row = await opened(consentId);
    expect(row).toMatchObject({
      id: withdrawalDestructionId(consentId),
      status: 'awaiting-approval',
      requestedBy: 'system',
      origin: { kind: 'consent', consentId },
      scope: { kind: 'subjects', subjectIds: [subjectId] },
      targeted: 1,
    });
    const [assessed] = await erasureAudit(consentId);
    expect(assessed).toMatchObject({
      action: 'consent.erasure-requested',
      actor: 'system',
      workflowId: consentWorkflowId(consentId),
      details: { subjectId, purpose: 'newsletter', erasure: { kind: 'subject' }, destructionId: row.id },
    });
    expect(assessed!.runId).toBeTruthy();

    // Re-submitted: refused by the consent (409); the activity retried: the same request is found.
    expect((await post(api, `/consents/${consentId}/withdraw`, owner.key, {})).status).toBe(409);
    const retry = new MockActivityEnvironment(
      {
        taskQueue: api.config.TEMPORAL_TASK_QUEUE,
        workflowExecution: { workflowId: consentWorkflowId(consentId), runId: assessed!.runId! },
      },
      { client: api.temporal },
    );
    await retry.run(createActivities(api).recordConsentWithdrawal, {
      consentId,
      round: 1,
      withdrawnAt: Date.now(),
      by: { actor: 'test', method: 'on-behalf' as const },
    });
    expect(await requestsOf(consentId)).toHaveLength(1);
    expect(await erasureAudit(consentId)).toHaveLength(1);

    // The requester is the system: any two distinct approvers decide.
    for (const approver of [approverA, approverB])
      expect(
        (await post(api, `/destructions/${row.id}/approvals`, approver.key, { decision: 'approve', comment: 'ok' }))
          .status,
      ).toBe(200);
    const done = await api.temporal.workflow.getHandle(destructionWorkflowId(row.id)).result();
    expect(done).toMatchObject({ status: 'completed', subjectsDestroyed: 1 });
    const [subject] = await api.database.db.select().from(subjects).where(eq(subjects.id, subjectId));
    expect(subject!.status).toBe('destroyed');
  });

  it('opens a field-scope request when other values of the subject keep a basis', async () => {
    const subjectId = await insertSubject({ name: 'Wang Fang', newsletterEmail: 'fang@example.cn' });
    const consentId = await grantedThenWithdrawn(api, subjectId, newsletterNotice);
    const row = await opened(consentId);
    expect(row.scope).toEqual({ kind: 'fields', fields: ['newsletterEmail'], subjectIds: [subjectId] });
  });

  it('opens none for a subject with another basis left', async () => {
    // email serves customer-service (contract) as well as marketing.
    const subjectId = await insertSubject({ email: 'li@example.cn', segment: 'retail' });
    const consentId = await grantedThenWithdrawn(api, subjectId, marketingNotice);
    await api.temporal.workflow.getHandle(consentWorkflowId(consentId)).result();
    expect(await requestsOf(consentId)).toHaveLength(0);
    expect(await erasureAudit(consentId)).toHaveLength(0);
  });

  it('refuses, and records, the request of a held subject', async () => {
    const subjectId = await insertSubject({ newsletterEmail: 'held@example.cn' });
    expect(
      (await post(api, '/legal-holds', owner.key, { subjectIds: [subjectId], reason: 'litigation: case 2026-31' }))
        .status,
    ).toBe(201);
    const consentId = await grantedThenWithdrawn(api, subjectId, newsletterNotice);
    const row = await waitFor(async () => {
      const [r] = await requestsOf(consentId);
      return r?.status === 'refused' ? r : undefined;
    }, 'the refused request');
    expect(row).toMatchObject({ held: 1, targeted: 0, outcome: 'every matched subject is under legal hold' });
    const refused = await api.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.targetId, row.id), eq(auditLog.action, 'destruction.refused')));
    expect(refused).toHaveLength(1);
    expect(await api.temporal.workflow.getHandle(destructionWorkflowId(row.id)).result()).toMatchObject({
      status: 'refused',
    });
  });

  it('opens none when the option is off', async () => {
    const subjectId = await insertSubject({ newsletterEmail: 'off@example.cn' });
    const consentId = await grantedThenWithdrawn(off, subjectId, newsletterNotice);
    await off.temporal.workflow.getHandle(consentWorkflowId(consentId)).result();
    expect(await requestsOf(consentId)).toHaveLength(0);
    expect(await erasureAudit(consentId)).toHaveLength(0);
  });
});
