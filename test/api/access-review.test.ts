import { randomUUID } from 'node:crypto';
import type { Worker } from '@temporalio/worker';
import { and, asc, eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../activities/audit-verify';
import { newSubject } from '../../activities/subject-writer';
import { auditLog, notifications } from '../../db/schema';
import { defaultCatalog } from '../../domain/catalog';
import { accessReviewWorkflowId } from '../../domain/ids';
import { bearer, readJson, type Problem } from '../helpers/api';
import { seedStaff } from '../helpers/incidents';
import { insertNewSubject } from '../helpers/notifications';
import { createTestApp, createTestWorker, type TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';

interface Grant {
  id: string;
  userId: string;
  active: boolean;
  revokedAt: string | null;
  revokeReason: string | null;
}
interface Review {
  id: string;
  status: 'open' | 'closed';
  period: string;
  progress: { total: number; decided: number; pending: number };
  summary: Record<string, number> | null;
  items: {
    grantId: string;
    granteeId: string;
    reviewerId: string;
    decision: string | null;
    decidedBy: string | null;
    outcome: string | null;
    revokeReason: string | null;
  }[];
}

let api: TestApp;
let worker: Worker;
let running: Promise<void>;
type Staff = Awaited<ReturnType<typeof seedStaff>>;
let admin: Staff;
let reviewer1: Staff;
let reviewer2: Staff;
let owners: [Staff, Staff, Staff, Staff];
let subjectId: string;

const SCORE = 712;

beforeAll(async () => {
  api = await createTestApp({ config: { CUSTODIAN_SENSITIVE_REVEAL_NEEDS_GRANT: true } });
  worker = await createTestWorker(api);
  running = worker.run();
  const { db } = api.database;
  admin = await seedStaff(db, api.keyring, 'admin');
  reviewer1 = await seedStaff(db, api.keyring, 'approver', 'reviewer 1');
  reviewer2 = await seedStaff(db, api.keyring, 'approver', 'reviewer 2');
  owners = (await Promise.all([1, 2, 3, 4].map((n) => seedStaff(db, api.keyring, 'owner', `owner ${n}`)))) as never;
  const created = newSubject(
    defaultCatalog,
    api.keyring,
    { externalRef: `access-${randomUUID()}`, jurisdiction: 'CN', locale: 'zh-CN', fields: {} },
    new Map<string, string | number>([
      ['email', 'li@example.cn'],
      ['creditScore', SCORE],
    ]),
  );
  subjectId = await insertNewSubject(db, created);
}, 120_000);
afterAll(async () => {
  worker?.shutdown();
  await running;
  await api?.close();
});

const request = (path: string, key: string, init: { method?: string; body?: unknown } = {}) =>
  api.app.request(path, {
    method: init.method ?? 'GET',
    headers: bearer(key),
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
const grant = async (userId: string, reviewerId: string, o: Record<string, unknown> = {}) => {
  const res = await request('/v1/access-grants', admin.key, {
    method: 'POST',
    body: {
      userId,
      capability: 'reveal',
      classification: 'sensitive',
      purpose: 'credit-assessment',
      expiresAt: new Date(Date.now() + 3600_000).toISOString(),
      reviewerId,
      ...o,
    },
  });
  expect(res.status).toBe(201);
  return readJson<Grant>(res);
};
/** A reveal for credit-assessment reaches creditScore (sensitive): the status says whether the grant works. */
const revealStatus = async (who: Staff) =>
  (await request(`/v1/subjects/${subjectId}/reveal?purpose=credit-assessment`, who.key)).status;
const review = async (id: string) => readJson<Review>(await request(`/v1/access-reviews/${id}`, admin.key));
const decide = (id: string, who: Staff, grantId: string, decision: 'keep' | 'revoke') =>
  request(`/v1/access-reviews/${id}/decisions`, who.key, { method: 'POST', body: { grantId, decision } });
const problemOf = async (res: Response, status: number) => {
  expect(res.status).toBe(status);
  return readJson<Problem>(res);
};

describe('access review', () => {
  it('keeps one grant, revokes one, revokes the unanswered one at the deadline; no self-certification', async () => {
    const [o1, o2, o3] = owners;
    const kept = await grant(o1.userId, reviewer1.userId);
    const revoked = await grant(o2.userId, reviewer1.userId);
    const unanswered = await grant(o3.userId, reviewer2.userId);
    // A grant held by an approver: they must not certify it themselves.
    const approversOwn = await grant(reviewer2.userId, reviewer1.userId, { classification: 'personal' });
    for (const o of [o1, o2, o3]) expect(await revealStatus(o)).toBe(200);

    const started = await request('/v1/access-reviews', admin.key, {
      method: 'POST',
      body: { deadline: '15 seconds', reminderEvery: '4 seconds' },
    });
    expect(started.status).toBe(202);
    const { id } = await readJson<{ id: string; workflowId: string }>(started);
    const opened = await waitFor(async () => {
      const r = await review(id);
      return r.status === 'open' && r.progress.total === 4 ? r : undefined;
    }, 'the review snapshot');
    expect(opened.period).toMatch(/^\d{4}-Q[1-4]$/);
    expect(opened.items.find((i) => i.grantId === unanswered.id)).toMatchObject({ reviewerId: reviewer2.userId });

    // Each reviewer is asked once, through the staff outbox.
    const requests = await waitFor(async () => {
      const rows = await api.database.db
        .select()
        .from(notifications)
        .where(like(notifications.idempotencyKey, `${accessReviewWorkflowId(id)}:request:%`));
      return rows.length === 2 ? rows : undefined;
    }, 'the reviewers asked');
    expect(requests.map((r) => r.recipientRef).sort()).toEqual(
      [`user:${reviewer1.userId}`, `user:${reviewer2.userId}`].sort(),
    );

    // Self-certification is refused, and so is a decision by someone who is not an approver.
    const self = await problemOf(await decide(id, reviewer2, approversOwn.id, 'keep'), 403);
    expect(self.code).toBe('self-certification');
    expect((await decide(id, o1, kept.id, 'keep')).status).toBe(403);
    expect((await problemOf(await decide(id, reviewer1, randomUUID(), 'keep'), 404)).code).toBe('not-found');
    const badBody = await problemOf(
      await request(`/v1/access-reviews/${id}/decisions`, reviewer1.key, {
        method: 'POST',
        body: { grantId: kept.id, decision: 'maybe' },
      }),
      400,
    );
    expect(badBody.fields?.map((f) => f.path)).toEqual(['decision']);

    expect((await decide(id, reviewer1, kept.id, 'keep')).status).toBe(200);
    expect((await decide(id, reviewer1, approversOwn.id, 'keep')).status).toBe(200);
    expect((await decide(id, reviewer1, revoked.id, 'revoke')).status).toBe(200);
    // A revoke takes effect at once; the kept grant and the unanswered one still work.
    expect(await revealStatus(o2)).toBe(403);
    expect(await revealStatus(o1)).toBe(200);
    expect(await revealStatus(o3)).toBe(200);
    // The same decision again is answered, a different one refused.
    expect((await decide(id, reviewer1, kept.id, 'keep')).status).toBe(200);
    expect((await problemOf(await decide(id, reviewer1, kept.id, 'revoke'), 409)).code).toBe('already-decided');

    const mid = await review(id);
    expect(mid.progress).toEqual({ total: 4, decided: 3, pending: 1 });

    // The deadline: the unanswered grant is revoked in the same transaction that closes the review.
    const closed = await waitFor(
      async () => {
        const r = await review(id);
        return r.status === 'closed' ? r : undefined;
      },
      'the review closed',
      90_000,
    );
    expect(await revealStatus(o3)).toBe(403);
    expect(await revealStatus(o1)).toBe(200);
    expect(closed.summary).toEqual({ total: 4, kept: 2, revoked: 1, notCertified: 1, ended: 0 });
    const byGrant = new Map(closed.items.map((i) => [i.grantId, i]));
    expect(byGrant.get(kept.id)).toMatchObject({
      decision: 'keep',
      decidedBy: `user:${reviewer1.userId}`,
      outcome: 'kept',
    });
    expect(byGrant.get(revoked.id)).toMatchObject({
      decision: 'revoke',
      outcome: 'revoked',
      revokeReason: 'review-revoked',
    });
    expect(byGrant.get(unanswered.id)).toMatchObject({
      decision: null,
      outcome: 'not-certified',
      revokeReason: 'not-certified',
    });
    expect(byGrant.get(approversOwn.id)).toMatchObject({ outcome: 'kept', revokeReason: null });

    // Reviewer 2 still had a grant to decide after the request: reminded before the deadline.
    const reminders = await api.database.db
      .select()
      .from(notifications)
      .where(like(notifications.idempotencyKey, `${accessReviewWorkflowId(id)}:reminder-%:user-${reviewer2.userId}`));
    expect(reminders.length).toBeGreaterThanOrEqual(1);

    const revocations = await api.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, 'access-grant.revoked'), eq(auditLog.targetId, unanswered.id)))
      .orderBy(asc(auditLog.seq));
    expect(revocations).toHaveLength(1);
    expect(revocations[0]).toMatchObject({
      actor: 'system',
      workflowId: accessReviewWorkflowId(id),
      details: { reason: 'not-certified', userId: o3.userId },
    });
    expect(revocations[0]!.runId).toBeTruthy();
    const grants = await readJson<{ items: Grant[] }>(await request(`/v1/access-grants?active=true`, admin.key));
    expect(grants.items.map((g) => g.id).sort()).toEqual([kept.id, approversOwn.id].sort());

    const listed = await readJson<{ items: { id: string; status: string; summary: unknown }[] }>(
      await request('/v1/access-reviews', reviewer1.key),
    );
    expect(listed.items[0]).toMatchObject({ id, status: 'closed', summary: closed.summary });

    // After the close a decision is refused.
    expect((await problemOf(await decide(id, reviewer2, unanswered.id, 'keep'), 409)).code).toBe(
      'access-review-closed',
    );
    expect((await verifyAuditChain(api.database.db)).valid).toBe(true);
  }, 120_000);
});

describe('access grants', () => {
  it('need a grant to reveal sensitive fields; an expired or revoked grant stops working at once', async () => {
    const o4 = owners[3];
    // Without a grant: a purpose reaching a sensitive field is refused (audited); one that does not is not.
    const refused = await problemOf(
      await request(`/v1/subjects/${subjectId}/reveal?purpose=credit-assessment`, o4.key),
      403,
    );
    expect(refused.code).toBe('access-grant-required');
    expect((await request(`/v1/subjects/${subjectId}/reveal?purpose=customer-service`, o4.key)).status).toBe(200);
    const [entry] = await api.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, 'subject.reveal-refused'), eq(auditLog.actor, `user:${o4.userId}`)));
    expect(entry?.details).toMatchObject({ code: 'access-grant-required', purpose: 'credit-assessment' });

    // A grant for another purpose does not cover this one.
    await grant(o4.userId, reviewer1.userId, { purpose: 'debt-collection' });
    expect(await revealStatus(o4)).toBe(403);

    // A grant that expires in two seconds works, then stops without anyone revoking it.
    const short = await grant(o4.userId, reviewer1.userId, { expiresAt: new Date(Date.now() + 2000).toISOString() });
    const res = await request(`/v1/subjects/${subjectId}/reveal?purpose=credit-assessment`, o4.key);
    expect(res.status).toBe(200);
    expect((await readJson<{ fields: Record<string, { value: unknown }> }>(res)).fields.creditScore?.value).toBe(SCORE);
    await waitFor(async () => ((await revealStatus(o4)) === 403 ? true : undefined), 'the grant expired');
    const listed = await readJson<{ items: Grant[] }>(
      await request(`/v1/access-grants?userId=${o4.userId}`, admin.key),
    );
    expect(listed.items.find((g) => g.id === short.id)).toMatchObject({ active: false, revokedAt: null });

    // Revoked by an admin: refused on the very next request; a second revoke is a conflict.
    const live = await grant(o4.userId, reviewer1.userId, { purpose: undefined });
    expect(await revealStatus(o4)).toBe(200);
    const del = await request(`/v1/access-grants/${live.id}`, admin.key, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(await readJson<Grant>(del)).toMatchObject({ active: false, revokeReason: 'revoked' });
    expect(await revealStatus(o4)).toBe(403);
    expect(
      (await problemOf(await request(`/v1/access-grants/${live.id}`, admin.key, { method: 'DELETE' }), 409)).code,
    ).toBe('grant-revoked');
    expect((await request(`/v1/access-grants/${randomUUID()}`, admin.key, { method: 'DELETE' })).status).toBe(404);
  }, 60_000);

  it('refuses bad grants naming the field, and callers other than admin', async () => {
    const o4 = owners[3];
    const post = (body: Record<string, unknown>, key = admin.key) =>
      request('/v1/access-grants', key, {
        method: 'POST',
        body: {
          userId: o4.userId,
          capability: 'reveal',
          classification: 'sensitive',
          expiresAt: new Date(Date.now() + 3600_000).toISOString(),
          reviewerId: reviewer1.userId,
          ...body,
        },
      });
    const fields = async (res: Response) => (await problemOf(res, 400)).fields?.map((f) => f.path);
    expect(await fields(await post({ reviewerId: o4.userId }))).toEqual(['reviewerId']);
    expect(await fields(await post({ classification: undefined }))).toEqual(['classification']);
    expect(await fields(await post({ capability: 'destroy' }))).toEqual(['capability']);
    expect(await fields(await post({ expiresAt: new Date(Date.now() - 1000).toISOString() }))).toEqual(['expiresAt']);
    expect(await fields(await post({ reviewerId: randomUUID() }))).toEqual(['reviewerId']);
    expect(await fields(await post({ reviewerId: owners[0].userId }))).toEqual(['reviewerId']);
    expect((await post({}, o4.key)).status).toBe(403);
    expect((await request('/v1/access-grants', reviewer1.key)).status).toBe(403);
  });
});
