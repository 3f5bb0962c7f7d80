import { randomUUID } from 'node:crypto';
import { and, desc, eq, gt, isNull, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { accessGrants, users } from '../db/schema';
import {
  grantCovers,
  purposeTouchesSensitive,
  type AccessGrantRequest,
  type Capability,
  type GrantRevokeReason,
} from '../domain/access-grants';
import type { Catalog, Classification } from '../domain/catalog';
import { DomainError } from '../domain/errors';
import { appendAudit, type DbOrTx } from './audit';
import type { Actor } from './users';

export type AccessGrant = typeof accessGrants.$inferSelect;

export interface AccessGrantView {
  id: string;
  userId: string;
  capability: Capability;
  classification: Classification | null;
  purpose: string | null;
  expiresAt: string;
  reviewerId: string;
  createdBy: string;
  createdAt: string;
  revokedAt: string | null;
  revokedBy: string | null;
  revokeReason: string | null;
  active: boolean;
}

export const grantView = (g: AccessGrant, now: Date): AccessGrantView => ({
  id: g.id,
  userId: g.userId,
  capability: g.capability,
  classification: g.classification,
  purpose: g.purpose,
  expiresAt: g.expiresAt.toISOString(),
  reviewerId: g.reviewerId,
  createdBy: g.createdBy,
  createdAt: g.createdAt.toISOString(),
  revokedAt: g.revokedAt?.toISOString() ?? null,
  revokedBy: g.revokedBy,
  revokeReason: g.revokeReason,
  active: g.revokedAt === null && g.expiresAt.getTime() > now.getTime(),
});

/** Live grants: not revoked and not expired by the database's clock, so neither waits for a cache or a sweep. */
export const liveGrant = and(isNull(accessGrants.revokedAt), gt(accessGrants.expiresAt, sql`now()`));

const activeUser = async (db: Db, id: string) =>
  (
    await db
      .select()
      .from(users)
      .where(and(eq(users.id, id), isNull(users.disabledAt)))
  )[0];

/** Records a grant after checking that the grantee is an active user and the reviewer an active approver; audited. */
export const createGrant = async (db: Db, g: AccessGrantRequest, by: Actor, now: Date): Promise<AccessGrant> => {
  const expiresAt = new Date(g.expiresAt);
  if (expiresAt.getTime() <= now.getTime())
    throw new DomainError('invalid', 'expiresAt', 'expiresAt must be in the future');
  if (!(await activeUser(db, g.userId)))
    throw new DomainError('invalid', 'userId', `userId: no active user ${g.userId}`);
  // Reviewers certify in access reviews, which take decisions from approvers only.
  if ((await activeUser(db, g.reviewerId))?.role !== 'approver')
    throw new DomainError('invalid', 'reviewerId', `reviewerId: no active user ${g.reviewerId} with the role approver`);
  return db.transaction(async (tx) => {
    const [grant] = await tx
      .insert(accessGrants)
      .values({
        id: randomUUID(),
        userId: g.userId,
        capability: g.capability,
        classification: g.classification ?? null,
        purpose: g.purpose ?? null,
        expiresAt,
        reviewerId: g.reviewerId,
        createdBy: by.actor,
      })
      .returning();
    await appendAudit(tx, {
      ...by,
      action: 'access-grant.created',
      targetType: 'access-grant',
      targetId: grant!.id,
      details: {
        userId: g.userId,
        capability: g.capability,
        classification: g.classification ?? null,
        purpose: g.purpose ?? null,
        expiresAt: expiresAt.toISOString(),
        reviewerId: g.reviewerId,
      },
      idempotencyKey: `access-grant:${grant!.id}:created`,
    });
    return grant!;
  });
};

export const listGrants = (db: Db, o: { userId?: string; activeOnly?: boolean }): Promise<AccessGrant[]> =>
  db
    .select()
    .from(accessGrants)
    .where(and(o.userId ? eq(accessGrants.userId, o.userId) : undefined, o.activeOnly ? liveGrant : undefined))
    .orderBy(desc(accessGrants.createdAt), accessGrants.id);

export const findGrant = async (db: DbOrTx, id: string): Promise<AccessGrant | undefined> =>
  (await db.select().from(accessGrants).where(eq(accessGrants.id, id)))[0];

/**
 * Revokes a live grant (a no-op answering false when it was already revoked), audited `access-grant.revoked` with
 * the reason, in the caller's transaction. `audit` carries the workflow and run IDs when a review revokes.
 */
export const revokeGrant = async (
  tx: DbOrTx,
  id: string,
  reason: GrantRevokeReason,
  audit: { actor: string; apiKeyId?: string | null; workflowId?: string | null; runId?: string | null },
  idempotencyKey: string,
): Promise<boolean> => {
  const [revoked] = await tx
    .update(accessGrants)
    .set({ revokedAt: sql`now()`, revokedBy: audit.actor, revokeReason: reason })
    .where(and(eq(accessGrants.id, id), isNull(accessGrants.revokedAt)))
    .returning({ id: accessGrants.id, userId: accessGrants.userId });
  if (!revoked) return false;
  await appendAudit(tx, {
    ...audit,
    action: 'access-grant.revoked',
    targetType: 'access-grant',
    targetId: id,
    details: { reason, userId: revoked.userId },
    idempotencyKey,
  });
  return true;
};

/** The user's live grant of `capability` covering `classification` data for `purpose`, read now from the database. */
export const liveGrantFor = async (
  db: DbOrTx,
  q: { userId: string; capability: Capability; classification: Classification; purpose: string },
): Promise<AccessGrant | undefined> => {
  const rows = await db
    .select()
    .from(accessGrants)
    .where(
      and(
        eq(accessGrants.userId, q.userId),
        eq(accessGrants.capability, q.capability),
        liveGrant,
        or(isNull(accessGrants.classification), eq(accessGrants.classification, q.classification)),
        or(isNull(accessGrants.purpose), eq(accessGrants.purpose, q.purpose)),
      ),
    );
  return rows.find((g) => grantCovers(g, q.classification, q.purpose));
};

export class AccessGrantRequiredError extends Error {
  override name = 'AccessGrantRequiredError';
  readonly code = 'access-grant-required';
}

/**
 * The reveal route's grant check: a reveal whose purpose reaches a `sensitive` catalog field needs the caller's
 * live `reveal` grant covering `sensitive` and the purpose. A refusal is audited (`subject.reveal-refused`, code
 * `access-grant-required`) and thrown before anything is read.
 */
export const checkRevealGrant = async (
  d: { db: Db; catalog: Catalog; enforce: boolean },
  r: Actor & { userId: string; subjectId: string; purpose: string },
): Promise<void> => {
  if (!d.enforce || !purposeTouchesSensitive(d.catalog, r.purpose)) return;
  const grant = await liveGrantFor(d.db, {
    userId: r.userId,
    capability: 'reveal',
    classification: 'sensitive',
    purpose: r.purpose,
  });
  if (grant) return;
  await appendAudit(d.db, {
    actor: r.actor,
    apiKeyId: r.apiKeyId,
    action: 'subject.reveal-refused',
    targetType: 'subject',
    targetId: r.subjectId,
    details: { purpose: r.purpose, code: 'access-grant-required', classification: 'sensitive' },
    idempotencyKey: `subject-reveal-refused:${randomUUID()}`,
  });
  throw new AccessGrantRequiredError(
    `purpose ${r.purpose} reaches sensitive fields: a live reveal grant for sensitive data and this purpose is required`,
  );
};
