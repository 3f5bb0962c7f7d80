import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { and, eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessReviewActivities } from '../../activities/access-reviews';
import { accessGrants, accessReviewItems, auditLog, notifications } from '../../db/schema';
import { accessReviewWorkflowId } from '../../domain/ids';
import { createTestServices, type TestServices } from '../helpers/services';

let s: TestServices;
let acts: ReturnType<typeof accessReviewActivities>;
const env = new MockActivityEnvironment();
const run = <A extends unknown[], R>(activity: (...args: A) => Promise<R>, ...args: A) =>
  env.run(activity, ...args) as Promise<R>;

beforeAll(async () => {
  s = await createTestServices();
  acts = accessReviewActivities({ ...s, db: s.database.db });
});
afterAll(() => s?.close());

const insertGrant = async (reviewerId: string) => {
  const row = {
    id: randomUUID(),
    userId: randomUUID(),
    capability: 'reveal' as const,
    classification: 'sensitive' as const,
    expiresAt: new Date(Date.now() + 3600_000),
    reviewerId,
    createdBy: 'test',
  };
  await s.database.db.insert(accessGrants).values(row);
  return row;
};
const auditCount = async (action: string, targetId: string) =>
  (
    await s.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, action), eq(auditLog.targetId, targetId)))
  ).length;

describe('access review activities, retried as after a crash', () => {
  it('snapshot, ask, decide and close once each, whatever is retried', async () => {
    const reviewerA = randomUUID();
    const reviewerB = randomUUID();
    const kept = await insertGrant(reviewerA);
    const unanswered = await insertGrant(reviewerB);
    const reviewId = randomUUID();
    const start = { reviewId, requestedBy: 'test', startedAt: Date.now(), deadlineAt: Date.now() + 60_000 };

    expect(await run(acts.startAccessReview, start)).toMatchObject({ total: 2 });
    // A grant made after the start is not in this review, even when the start is retried.
    await insertGrant(reviewerA);
    expect(await run(acts.startAccessReview, start)).toMatchObject({ total: 2 });
    const items = await s.database.db.select().from(accessReviewItems).where(eq(accessReviewItems.reviewId, reviewId));
    expect(items.map((i) => i.grantId).sort()).toEqual([kept.id, unanswered.id].sort());
    expect(await auditCount('access-review.started', reviewId)).toBe(1);

    // Reviewers without a contact: the outbox row is final (NoRecipient), and a retry writes no second one.
    for (let i = 0; i < 2; i++) await run(acts.notifyAccessReviewers, { reviewId, step: 'request' });
    const asked = await s.database.db
      .select()
      .from(notifications)
      .where(like(notifications.idempotencyKey, `${accessReviewWorkflowId(reviewId)}:request:%`));
    expect(asked.map((n) => n.recipientRef).sort()).toEqual([`user:${reviewerA}`, `user:${reviewerB}`].sort());

    const decision = {
      reviewId,
      grantId: kept.id,
      decision: 'keep' as const,
      by: { userId: reviewerA, role: 'approver' },
    };
    const first = await run(acts.recordAccessDecision, decision);
    expect(await run(acts.recordAccessDecision, decision)).toEqual(first);
    expect(await auditCount('access-review.decided', reviewId)).toBe(1);
    await expect(
      run(acts.recordAccessDecision, {
        ...decision,
        grantId: unanswered.id,
        by: { userId: unanswered.userId, role: 'approver' },
      }),
    ).rejects.toMatchObject({ type: 'SelfCertification' });

    const closed = await run(acts.closeAccessReview, { reviewId });
    expect(closed).toEqual({ reviewId, total: 2, kept: 1, revoked: 0, notCertified: 1, ended: 0 });
    expect(await run(acts.closeAccessReview, { reviewId })).toEqual(closed);
    expect(await auditCount('access-grant.revoked', unanswered.id)).toBe(1);
    expect(await auditCount('access-grant.revoked', kept.id)).toBe(0);
    expect(await auditCount('access-review.closed', reviewId)).toBe(1);
    const [grant] = await s.database.db.select().from(accessGrants).where(eq(accessGrants.id, unanswered.id));
    expect(grant).toMatchObject({ revokeReason: 'not-certified', revokedBy: 'system' });
    await expect(
      run(acts.recordAccessDecision, {
        ...decision,
        grantId: unanswered.id,
        by: { userId: reviewerB, role: 'approver' },
      }),
    ).rejects.toMatchObject({ type: 'AccessReviewClosed' });
  });
});
