import { createHash, randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { and, asc, desc, eq, isNull, lte, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { obligationCompletions, obligations, users } from '../db/schema';
import { DomainError } from '../domain/errors';
import {
  DEFAULT_OBLIGATIONS,
  addMonths,
  obligationStatus,
  renderObligationMessage,
  type ObligationCheckInput,
  type ObligationCheckResult,
  type ObligationCompletion,
  type ObligationPatch,
  type ObligationRequest,
} from '../domain/obligations';
import type { Config } from '../runtime/config';
import type { Keyring } from '../runtime/keyring';
import type { Logger } from '../runtime/logger';
import { appendAudit } from './audit';
import { staffMessenger } from './staff-messages';
import type { Actor } from './users';

export type Obligation = typeof obligations.$inferSelect;
export type ObligationCompletionRow = typeof obligationCompletions.$inferSelect;

/**
 * Seeds the default obligations the first time (by key, so a second call or a concurrent one adds nothing); each is
 * first due one recurrence after it is seeded, with no owner (every owner is told) until an operator names one.
 */
export const ensureDefaultObligations = async (db: Db, now: Date): Promise<void> => {
  await db
    .insert(obligations)
    .values(
      DEFAULT_OBLIGATIONS.map((o) => ({
        id: randomUUID(),
        key: o.key,
        title: o.title,
        source: o.source,
        recurrenceMonths: o.recurrenceMonths,
        nextDueAt: addMonths(now, o.recurrenceMonths),
        remindBeforeMs: o.remindBeforeMs,
        createdBy: 'system:defaults',
      })),
    )
    .onConflictDoNothing({ target: obligations.key });
};

export const listObligations = async (db: Db, now: Date): Promise<Obligation[]> => {
  await ensureDefaultObligations(db, now);
  return db.select().from(obligations).orderBy(asc(obligations.nextDueAt), asc(obligations.key));
};

export const findObligation = async (db: Db, id: string) =>
  (await db.select().from(obligations).where(eq(obligations.id, id)))[0];

export const completionsOf = (db: Db, obligationId: string): Promise<ObligationCompletionRow[]> =>
  db
    .select()
    .from(obligationCompletions)
    .where(eq(obligationCompletions.obligationId, obligationId))
    .orderBy(desc(obligationCompletions.completedAt));

const activeOwner = async (db: Db, id: string) =>
  (
    await db
      .select()
      .from(users)
      .where(and(eq(users.id, id), eq(users.role, 'owner'), isNull(users.disabledAt)))
  )[0];

/** Adds an obligation; its key must be new (409) and its owner an active user with the role owner (400). */
export const createObligation = async (db: Db, o: ObligationRequest, by: Actor, now: Date): Promise<Obligation> => {
  await ensureDefaultObligations(db, now);
  if (o.ownerId && !(await activeOwner(db, o.ownerId)))
    throw new DomainError('invalid', 'ownerId', `ownerId: no active user ${o.ownerId} with the role owner`);
  return db.transaction(async (tx) => {
    const [row] = await tx
      .insert(obligations)
      .values({
        id: randomUUID(),
        key: o.key,
        title: o.title,
        source: o.source,
        ownerId: o.ownerId ?? null,
        recurrenceMonths: o.recurrenceMonths,
        nextDueAt: new Date(o.nextDueAt),
        remindBeforeMs: o.remindBefore ?? 30 * 86_400_000,
        createdBy: by.actor,
      })
      .onConflictDoNothing({ target: obligations.key })
      .returning();
    if (!row) throw DomainError.conflict('obligation-exists', `an obligation with key ${o.key} exists`);
    await appendAudit(tx, {
      ...by,
      action: 'obligation.created',
      targetType: 'obligation',
      targetId: row.id,
      details: {
        key: row.key,
        ownerId: row.ownerId,
        recurrenceMonths: row.recurrenceMonths,
        nextDueAt: row.nextDueAt.toISOString(),
      },
      idempotencyKey: `obligation:${row.id}:created`,
    });
    return row;
  });
};

/** Changes an obligation's owner, due date, recurrence or reminder lead; audited `obligation.updated` with the changes. */
export const updateObligation = async (db: Db, id: string, p: ObligationPatch, by: Actor): Promise<Obligation> => {
  if (p.ownerId && !(await activeOwner(db, p.ownerId)))
    throw new DomainError('invalid', 'ownerId', `ownerId: no active user ${p.ownerId} with the role owner`);
  return db.transaction(async (tx) => {
    const [row] = await tx
      .update(obligations)
      .set({
        ...(p.ownerId !== undefined ? { ownerId: p.ownerId } : {}),
        ...(p.nextDueAt !== undefined ? { nextDueAt: new Date(p.nextDueAt) } : {}),
        ...(p.recurrenceMonths !== undefined ? { recurrenceMonths: p.recurrenceMonths } : {}),
        ...(p.remindBefore !== undefined ? { remindBeforeMs: p.remindBefore } : {}),
      })
      .where(eq(obligations.id, id))
      .returning();
    if (!row) throw DomainError.notFound(`obligation ${id}`);
    await appendAudit(tx, {
      ...by,
      action: 'obligation.updated',
      targetType: 'obligation',
      targetId: id,
      details: {
        key: row.key,
        ...(p.ownerId !== undefined ? { ownerId: p.ownerId } : {}),
        ...(p.nextDueAt !== undefined ? { nextDueAt: row.nextDueAt.toISOString() } : {}),
        ...(p.recurrenceMonths !== undefined ? { recurrenceMonths: p.recurrenceMonths } : {}),
        ...(p.remindBefore !== undefined ? { remindBeforeMs: p.remindBefore } : {}),
      },
      idempotencyKey: `obligation:${id}:updated:${randomUUID()}`,
    });
    return row;
  });
};

/**
 * Records the evidence for the current due date and moves the next due date on by the recurrence (from the due
 * date, so a late completion does not shift the calendar), audited `obligation.completed` with the evidence's
 * hashes. The row is locked, so two completions at once record one due date once.
 */
export const completeObligation = async (
  db: Db,
  id: string,
  c: ObligationCompletion,
  by: Actor,
  now: Date,
  /** The due date the caller saw (the console's form): another completion since is 409, not a second period. */
  expectedDueAt?: Date,
): Promise<{ obligation: Obligation; completion: ObligationCompletionRow }> =>
  db.transaction(async (tx) => {
    const [current] = await tx.select().from(obligations).where(eq(obligations.id, id)).for('update');
    if (!current) throw DomainError.notFound(`obligation ${id}`);
    if (expectedDueAt && current.nextDueAt.getTime() !== expectedDueAt.getTime())
      throw DomainError.conflict(
        'obligation-due-date-moved',
        `obligation ${id} is now due ${current.nextDueAt.toISOString()}`,
      );
    let nextDueAt = addMonths(current.nextDueAt, current.recurrenceMonths);
    // Completed more than a whole recurrence late: the next one is due a recurrence from now, not in the past.
    if (nextDueAt.getTime() <= now.getTime()) nextDueAt = addMonths(now, current.recurrenceMonths);
    const [completion] = await tx
      .insert(obligationCompletions)
      .values({
        id: randomUUID(),
        obligationId: id,
        dueAt: current.nextDueAt,
        completedAt: now,
        completedBy: by.actor,
        apiKeyId: by.apiKeyId ?? null,
        evidenceNote: c.evidenceNote ?? null,
        evidenceSha256: c.evidenceSha256 ?? null,
        nextDueAt,
      })
      .returning();
    const [obligation] = await tx
      .update(obligations)
      .set({ nextDueAt, lastCompletedAt: now })
      .where(eq(obligations.id, id))
      .returning();
    await appendAudit(tx, {
      ...by,
      action: 'obligation.completed',
      targetType: 'obligation',
      targetId: id,
      details: {
        key: current.key,
        completionId: completion!.id,
        dueAt: current.nextDueAt.toISOString(),
        late: now.getTime() > current.nextDueAt.getTime(),
        nextDueAt: nextDueAt.toISOString(),
        evidenceNoteSha256: c.evidenceNote ? createHash('sha256').update(c.evidenceNote, 'utf8').digest('hex') : null,
        evidenceSha256: c.evidenceSha256 ?? null,
      },
      idempotencyKey: `obligation:${id}:completed:${current.nextDueAt.toISOString()}`,
    });
    return { obligation: obligation!, completion: completion! };
  });

export interface ObligationDeps {
  db: Db;
  keyring: Keyring;
  config: Config;
  logger: Logger;
  clock: () => Date;
}

/** The scheduled check's activity: reminders for obligations due soon, a notice for overdue ones, to their owners. */
export const obligationActivities = (d: ObligationDeps) => {
  let messenger: ReturnType<typeof staffMessenger> | undefined;
  const message = () => (messenger ??= staffMessenger(d));

  return {
    /**
     * Each obligation within its reminder lead gets one reminder per due date, each overdue one one notice per due
     * date (the outbox key holds the due date, so a daily check or a retry sends each once), to its owner or, with
     * none named, every active owner. Audited `obligation.reminded` / `obligation.overdue` once per due date.
     */
    async checkObligations(i: ObligationCheckInput): Promise<ObligationCheckResult> {
      const now = d.clock();
      await ensureDefaultObligations(d.db, now);
      const due = await d.db
        .select()
        .from(obligations)
        .where(
          lte(
            obligations.nextDueAt,
            sql`${now.toISOString()}::timestamptz + (${obligations.remindBeforeMs} * interval '1 millisecond')`,
          ),
        )
        .orderBy(asc(obligations.nextDueAt));
      const owners = (
        await d.db
          .select({ id: users.id })
          .from(users)
          .where(and(eq(users.role, 'owner'), isNull(users.disabledAt)))
      ).map((u) => u.id);
      const execution = Context.current().info.workflowExecution;
      const [workflowId, runId] = [execution?.workflowId ?? null, execution?.runId ?? null];
      const result: ObligationCheckResult = {
        checkId: i.checkId,
        obligations: due.length,
        reminded: 0,
        overdue: 0,
        sent: 0,
        failed: 0,
      };
      for (const o of due) {
        Context.current().heartbeat(o.id);
        const overdue = obligationStatus(o, now) === 'overdue';
        const kind = overdue ? 'overdue' : 'reminder';
        const dueAt = o.nextDueAt.toISOString();
        if (overdue) result.overdue++;
        else result.reminded++;
        for (const userId of o.ownerId ? [o.ownerId] : owners) {
          const outcome = await message()({
            idempotencyKey: `obligation:${o.id}:${dueAt}:${kind}:user-${userId}`,
            template: `obligation-${kind}`,
            userId,
            about: { type: 'obligation', id: o.id },
            render: (locale) =>
              renderObligationMessage(locale, { obligationId: o.id, key: o.key, title: o.title, dueAt, overdue }),
          });
          if (outcome.status === 'failed') result.failed++;
          else result.sent++;
        }
        await appendAudit(d.db, {
          actor: 'system',
          action: `obligation.${overdue ? 'overdue' : 'reminded'}`,
          targetType: 'obligation',
          targetId: o.id,
          workflowId,
          runId,
          details: { key: o.key, dueAt, checkId: i.checkId, ownerId: o.ownerId },
          idempotencyKey: `obligation:${o.id}:${dueAt}:${kind}`,
        });
      }
      return result;
    },
  };
};
