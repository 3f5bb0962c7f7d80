import { ApplicationFailure, Context } from '@temporalio/activity';
import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { accessGrants, accessReviewItems, accessReviews } from '../db/schema';
import {
  ALREADY_DECIDED,
  NOT_IN_REVIEW,
  REVIEW_CLOSED,
  SELF_CERTIFICATION,
  renderAccessReviewMessage,
  reviewPeriod,
  type AccessDecider,
  type AccessDecision,
  type AccessReviewOutcome,
} from '../domain/access-review';
import { accessReviewWorkflowId } from '../domain/ids';
import type { Config } from '../runtime/config';
import type { Keyring } from '../runtime/keyring';
import type { Logger } from '../runtime/logger';
import { liveGrant, revokeGrant } from './access-grants';
import { appendAudit } from './audit';
import { staffMessenger } from './staff-messages';

export interface AccessReviewDeps {
  db: Db;
  keyring: Keyring;
  config: Config;
  logger: Logger;
  clock: () => Date;
}

const execution = () => {
  const e = Context.current().info.workflowExecution;
  return { workflowId: e?.workflowId ?? null, runId: e?.runId ?? null };
};

const refuse = (type: string, message: string) => ApplicationFailure.nonRetryable(message, type);

/**
 * The access review's effects, each idempotent: the review row and its snapshot are written once (keyed by the
 * review ID), messages by outbox key (workflow ID + step + reviewer), a decision once per grant, the close once.
 */
export const accessReviewActivities = (d: AccessReviewDeps) => {
  let messenger: ReturnType<typeof staffMessenger> | undefined;
  const message = () => (messenger ??= staffMessenger(d));

  return {
    /** Records the review and snapshots every live grant into it, in one transaction; a retry returns the stored one. */
    async startAccessReview(i: {
      reviewId: string;
      requestedBy: string;
      startedAt: number;
      deadlineAt: number;
    }): Promise<{ total: number; pending: number; period: string }> {
      return d.db.transaction(async (tx) => {
        const [existing] = await tx.select().from(accessReviews).where(eq(accessReviews.id, i.reviewId));
        if (existing) {
          const [counts = { total: 0, pending: 0 }] = await tx
            .select({
              total: sql<number>`count(*)::int`,
              pending: sql<number>`(count(*) filter (where ${accessReviewItems.decision} is null))::int`,
            })
            .from(accessReviewItems)
            .where(eq(accessReviewItems.reviewId, i.reviewId));
          return { ...counts, period: existing.period };
        }
        const period = reviewPeriod(new Date(i.startedAt));
        await tx.insert(accessReviews).values({
          id: i.reviewId,
          period,
          status: 'open',
          requestedBy: i.requestedBy,
          startedAt: new Date(i.startedAt),
          deadlineAt: new Date(i.deadlineAt),
          ...execution(),
        });
        const grants = await tx
          .select({ id: accessGrants.id, userId: accessGrants.userId, reviewerId: accessGrants.reviewerId })
          .from(accessGrants)
          .where(liveGrant);
        if (grants.length > 0)
          await tx.insert(accessReviewItems).values(
            grants.map((g) => ({
              reviewId: i.reviewId,
              grantId: g.id,
              granteeId: g.userId,
              reviewerId: g.reviewerId,
            })),
          );
        await appendAudit(tx, {
          actor: i.requestedBy,
          action: 'access-review.started',
          targetType: 'access-review',
          targetId: i.reviewId,
          ...execution(),
          details: { period, grants: grants.length, deadlineAt: new Date(i.deadlineAt).toISOString() },
          idempotencyKey: `${accessReviewWorkflowId(i.reviewId)}:started`,
        });
        return { total: grants.length, pending: grants.length, period };
      });
    },

    /** Tells each reviewer with undecided grants how many and by when; `step` is `request` or `reminder-{n}`. */
    async notifyAccessReviewers(i: { reviewId: string; step: string }): Promise<{ sent: number; failed: number }> {
      const [review] = await d.db.select().from(accessReviews).where(eq(accessReviews.id, i.reviewId));
      if (!review) throw refuse(NOT_IN_REVIEW, `no access review ${i.reviewId}`);
      const pending = await d.db
        .select({ reviewerId: accessReviewItems.reviewerId, n: sql<number>`count(*)::int` })
        .from(accessReviewItems)
        .where(and(eq(accessReviewItems.reviewId, i.reviewId), isNull(accessReviewItems.decision)))
        .groupBy(accessReviewItems.reviewerId)
        .orderBy(accessReviewItems.reviewerId);
      let sent = 0;
      let failed = 0;
      for (const p of pending) {
        Context.current().heartbeat(p.reviewerId);
        const outcome = await message()({
          idempotencyKey: `${accessReviewWorkflowId(i.reviewId)}:${i.step}:user-${p.reviewerId}`,
          template: i.step === 'request' ? 'access-review-request' : 'access-review-reminder',
          userId: p.reviewerId,
          about: { type: 'accessReview', id: i.reviewId },
          render: (locale) =>
            renderAccessReviewMessage(locale, {
              reviewId: i.reviewId,
              period: review.period,
              pending: p.n,
              deadlineAt: review.deadlineAt.toISOString(),
              reminder: i.step !== 'request',
            }),
        });
        if (outcome.status === 'failed') failed++;
        else sent++;
      }
      return { sent, failed };
    },

    /**
     * A reviewer's keep or revoke of one grant in the review. Refused when the decider holds the grant
     * (self-certification), the grant is not in the review, or it was decided already. A revoke takes effect at once.
     */
    async recordAccessDecision(i: {
      reviewId: string;
      grantId: string;
      decision: AccessDecision;
      by: AccessDecider;
    }): Promise<{ grantId: string; decision: AccessDecision; decidedAt: string; pending: number }> {
      const actor = `user:${i.by.userId}`;
      return d.db.transaction(async (tx) => {
        const pendingNow = async () =>
          (
            await tx
              .select({ n: sql<number>`count(*)::int` })
              .from(accessReviewItems)
              .where(and(eq(accessReviewItems.reviewId, i.reviewId), isNull(accessReviewItems.decision)))
          )[0]?.n ?? 0;
        const [review] = await tx.select().from(accessReviews).where(eq(accessReviews.id, i.reviewId)).for('update');
        if (!review) throw refuse(NOT_IN_REVIEW, `no access review ${i.reviewId}`);
        const [item] = await tx
          .select()
          .from(accessReviewItems)
          .where(and(eq(accessReviewItems.reviewId, i.reviewId), eq(accessReviewItems.grantId, i.grantId)))
          .for('update');
        if (!item) throw refuse(NOT_IN_REVIEW, `grant ${i.grantId} is not in access review ${i.reviewId}`);
        if (item.granteeId === i.by.userId)
          throw refuse(SELF_CERTIFICATION, `grant ${i.grantId} is held by ${actor}: nobody certifies their own grant`);
        // A retry of the same decision by the same user is answered with the stored one.
        if (item.decision !== null) {
          if (item.decision === i.decision && item.decidedBy === actor)
            return {
              grantId: i.grantId,
              decision: item.decision,
              decidedAt: item.decidedAt!.toISOString(),
              pending: await pendingNow(),
            };
          throw refuse(ALREADY_DECIDED, `grant ${i.grantId} was decided already (${item.decision})`);
        }
        if (review.status !== 'open') throw refuse(REVIEW_CLOSED, `access review ${i.reviewId} is closed`);
        const decidedAt = d.clock();
        await tx
          .update(accessReviewItems)
          .set({
            decision: i.decision,
            decidedBy: actor,
            decidedApiKeyId: i.by.apiKeyId ?? null,
            decidedAt,
            ...(i.decision === 'keep' ? { outcome: 'kept' } : {}),
          })
          .where(and(eq(accessReviewItems.reviewId, i.reviewId), eq(accessReviewItems.grantId, i.grantId)));
        const audit = { actor, apiKeyId: i.by.apiKeyId ?? null, ...execution() };
        await appendAudit(tx, {
          ...audit,
          action: 'access-review.decided',
          targetType: 'access-review',
          targetId: i.reviewId,
          details: { grantId: i.grantId, decision: i.decision, granteeId: item.granteeId },
          idempotencyKey: `${accessReviewWorkflowId(i.reviewId)}:decision:${i.grantId}`,
        });
        if (i.decision === 'revoke') {
          const revoked = await revokeGrant(
            tx,
            i.grantId,
            'review-revoked',
            audit,
            `${accessReviewWorkflowId(i.reviewId)}:revoke:${i.grantId}`,
          );
          await tx
            .update(accessReviewItems)
            .set({ outcome: revoked ? 'revoked' : 'ended' })
            .where(and(eq(accessReviewItems.reviewId, i.reviewId), eq(accessReviewItems.grantId, i.grantId)));
        }
        return {
          grantId: i.grantId,
          decision: i.decision,
          decidedAt: decidedAt.toISOString(),
          pending: await pendingNow(),
        };
      });
    },

    /**
     * The deadline: every grant nobody kept is revoked (`not-certified`), audited per grant with the workflow's IDs;
     * the review is closed with its counts, all in one transaction. A retry returns the stored counts.
     */
    async closeAccessReview(i: { reviewId: string }): Promise<AccessReviewOutcome> {
      const wf = accessReviewWorkflowId(i.reviewId);
      return d.db.transaction(async (tx) => {
        const [review] = await tx.select().from(accessReviews).where(eq(accessReviews.id, i.reviewId)).for('update');
        if (!review) throw refuse(NOT_IN_REVIEW, `no access review ${i.reviewId}`);
        const summarise = async (): Promise<AccessReviewOutcome> => {
          const items = await tx.select().from(accessReviewItems).where(eq(accessReviewItems.reviewId, i.reviewId));
          const n = (outcome: string) => items.filter((x) => x.outcome === outcome).length;
          return {
            reviewId: i.reviewId,
            total: items.length,
            kept: n('kept'),
            revoked: n('revoked'),
            notCertified: n('not-certified'),
            ended: n('ended'),
          };
        };
        if (review.status === 'closed') return summarise();
        const undecided = await tx
          .select({ grantId: accessReviewItems.grantId })
          .from(accessReviewItems)
          .where(and(eq(accessReviewItems.reviewId, i.reviewId), isNull(accessReviewItems.decision)));
        const audit = { actor: 'system', ...execution() };
        const notCertified: string[] = [];
        for (const { grantId } of undecided) {
          Context.current().heartbeat(grantId);
          if (await revokeGrant(tx, grantId, 'not-certified', audit, `${wf}:not-certified:${grantId}`))
            notCertified.push(grantId);
        }
        if (notCertified.length > 0)
          await tx
            .update(accessReviewItems)
            .set({ outcome: 'not-certified' })
            .where(and(eq(accessReviewItems.reviewId, i.reviewId), inArray(accessReviewItems.grantId, notCertified)));
        await tx
          .update(accessReviewItems)
          .set({ outcome: 'ended' })
          .where(and(eq(accessReviewItems.reviewId, i.reviewId), isNull(accessReviewItems.outcome)));
        const summary = await summarise();
        const { reviewId: _, ...counts } = summary;
        await tx
          .update(accessReviews)
          .set({ status: 'closed', closedAt: d.clock(), summary: counts })
          .where(eq(accessReviews.id, i.reviewId));
        await appendAudit(tx, {
          ...audit,
          action: 'access-review.closed',
          targetType: 'access-review',
          targetId: i.reviewId,
          details: counts,
          idempotencyKey: `${wf}:closed`,
        });
        return summary;
      });
    },
  };
};
