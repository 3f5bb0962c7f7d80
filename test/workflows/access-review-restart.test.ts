import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { and, eq, like } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { accessGrants, accessReviews, auditLog, notifications } from '../../db/schema';
import { accessReviewWorkflowId } from '../../domain/ids';
import { accessReview } from '../../workflows';
import { accessDecisionUpdate } from '../../workflows/access-review';
import { seedStaff } from '../helpers/incidents';
import { waitFor } from '../helpers/wait';
import { useProductionWorkers } from '../helpers/production-workers';

const workers = useProductionWorkers('access-review-kill');

describe('access review across a killed worker', () => {
  it(
    'a worker SIGKILLed mid-review, replaced: every reviewer asked once, the deadline revokes each unkept grant once',
    { timeout: 120_000 },
    async () => {
      const { database, temporal, spawnWorker } = workers;
      const db = database.db;
      const keyring = temporal.keyring;
      const [reviewer1, reviewer2] = await Promise.all([
        seedStaff(db, keyring, 'approver'),
        seedStaff(db, keyring, 'approver'),
      ]);
      const grants = [reviewer1, reviewer1, reviewer2].map((r) => ({
        id: randomUUID(),
        userId: randomUUID(),
        capability: 'reveal' as const,
        classification: 'sensitive' as const,
        expiresAt: new Date(Date.now() + 3600_000),
        reviewerId: r.userId,
        createdBy: 'test',
      }));
      await db.insert(accessGrants).values(grants);
      const taskQueue = temporal.taskQueue('access-review-kill');
      const first = await spawnWorker(taskQueue);
      const replacement = await spawnWorker(taskQueue, { standby: true });

      const reviewId = randomUUID();
      const workflowId = accessReviewWorkflowId(reviewId);
      const handle = await temporal.client.workflow.start(accessReview, {
        taskQueue,
        workflowId,
        args: [{ reviewId, requestedBy: 'test', deadlineMs: 15_000, reminderEveryMs: 4_000 }],
      });
      const outbox = () =>
        db
          .select()
          .from(notifications)
          .where(like(notifications.idempotencyKey, `${workflowId}:%`));
      await waitFor(async () => {
        const sent = (await outbox()).filter((n) => n.idempotencyKey.includes(':request:') && n.status === 'sent');
        return sent.length === 2 ? true : undefined;
      }, 'both reviewers asked');
      await handle.executeUpdate(accessDecisionUpdate, {
        args: [
          { userId: reviewer1.userId, role: 'approver' },
          { grantId: grants[0]!.id, decision: 'keep' },
        ],
      });

      first.child.kill('SIGKILL');
      await once(first.child, 'exit');
      await new Promise((r) => setTimeout(r, 2_000));
      await replacement.go();

      const outcome = await handle.result();
      expect(outcome).toMatchObject({ total: 3, kept: 1, revoked: 0, notCertified: 2, ended: 0 });
      const [review] = await db.select().from(accessReviews).where(eq(accessReviews.id, reviewId));
      expect(review).toMatchObject({ status: 'closed', summary: { total: 3, kept: 1, notCertified: 2 } });
      for (const g of grants.slice(1)) {
        const revocations = await db
          .select()
          .from(auditLog)
          .where(and(eq(auditLog.action, 'access-grant.revoked'), eq(auditLog.targetId, g.id)));
        expect(revocations.map((e) => e.details)).toEqual([{ reason: 'not-certified', userId: g.userId }]);
      }
      const [kept] = await db.select().from(accessGrants).where(eq(accessGrants.id, grants[0]!.id));
      expect(kept!.revokedAt).toBeNull();
      // Each message once: one row per key (the key is unique), sent on its first attempt.
      const messages = await outbox();
      expect(messages.filter((n) => n.idempotencyKey.includes(':request:'))).toHaveLength(2);
      expect(messages.every((n) => n.status === 'sent' && n.attempts === 1)).toBe(true);
      // Reviewer 2 never answered: reminded at 4 s, 8 s and 12 s, once each.
      expect(
        messages
          .filter((n) => n.recipientRef === `user:${reviewer2.userId}` && n.template === 'access-review-reminder')
          .map((n) => n.idempotencyKey.split(':')[1])
          .sort(),
      ).toEqual(['reminder-1', 'reminder-2', 'reminder-3']);
    },
  );
});
