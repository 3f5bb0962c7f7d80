import { randomUUID } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { legalHolds, legalHoldSubjects } from '../db/schema';
import { DomainError } from '../domain/errors';
import type { LegalHoldFilter } from '../domain/legal-hold';
import { appendAudit } from './audit';
import type { Actor } from './users';
import { pgArray } from './subject-writer';

export type LegalHold = typeof legalHolds.$inferSelect;

/**
 * Places a hold on the named (or filtered) subjects that exist and are not destroyed; `subjects.legal_hold` is set
 * in the same transaction as the hold and its audit entry. A hold covering nobody is refused.
 */
export const placeLegalHold = (
  db: Db,
  h: { subjectIds?: string[]; filter?: LegalHoldFilter; reason: string },
  by: Actor,
): Promise<{ id: string; subjects: number; missing: number }> =>
  db.transaction(async (tx) => {
    const id = randomUUID();
    const where = h.subjectIds
      ? sql`s.id = any(${pgArray(h.subjectIds)}::uuid[])`
      : sql`(${h.filter?.importId ?? null}::text is null or s.import_id = ${h.filter?.importId ?? null})
          and (${h.filter?.jurisdiction ?? null}::text is null or s.jurisdiction = ${h.filter?.jurisdiction ?? null})`;
    const held = [
      ...(await tx.execute<{ id: string }>(sql`
      update subjects s set legal_hold = true, updated_at = now()
      where ${where} and s.status <> 'destroyed'
      returning s.id`)),
    ];
    if (held.length === 0)
      throw new DomainError(
        'invalid',
        'legal-hold-empty',
        'the hold covers no subject that exists and is not destroyed',
      );
    await tx.insert(legalHolds).values({
      id,
      reason: h.reason,
      filter: h.filter ?? null,
      subjects: held.length,
      createdBy: by.actor,
    });
    await tx.execute(sql`
      insert into legal_hold_subjects (hold_id, subject_id)
      select ${id}::uuid, unnest(${pgArray(held.map((r) => r.id))}::uuid[])`);
    const missing = h.subjectIds ? new Set(h.subjectIds).size - held.length : 0;
    await appendAudit(tx, {
      ...by,
      action: 'legal-hold.placed',
      targetType: 'legal-hold',
      targetId: id,
      details: { subjects: held.length, missing, filter: h.filter ?? null },
      idempotencyKey: `legal-hold:${id}:placed`,
    });
    return { id, subjects: held.length, missing };
  });

/**
 * Releases an active hold; each of its subjects keeps `legal_hold` only while another active hold covers it. The
 * hold row is locked first, so two releases cannot both pass.
 */
export const releaseLegalHold = (db: Db, id: string, reason: string, by: Actor): Promise<LegalHold> =>
  db.transaction(async (tx) => {
    const [hold] = await tx.select().from(legalHolds).where(eq(legalHolds.id, id)).for('update');
    if (!hold) throw DomainError.notFound(`legal hold ${id}`);
    if (hold.status !== 'active')
      throw DomainError.conflict('legal-hold-released', `legal hold ${id} was released already`);
    const [released] = await tx
      .update(legalHolds)
      .set({ status: 'released', releasedBy: by.actor, releasedAt: new Date(), releaseReason: reason })
      .where(and(eq(legalHolds.id, id), eq(legalHolds.status, 'active')))
      .returning();
    const cleared = [
      ...(await tx.execute<{ legal_hold: boolean }>(sql`
      update subjects s set legal_hold = exists (
          select 1 from legal_hold_subjects o join legal_holds h on h.id = o.hold_id
          where o.subject_id = s.id and h.status = 'active'),
        updated_at = now()
      from legal_hold_subjects hs
      where hs.hold_id = ${id} and hs.subject_id = s.id
      returning s.legal_hold`)),
    ];
    await appendAudit(tx, {
      ...by,
      action: 'legal-hold.released',
      targetType: 'legal-hold',
      targetId: id,
      details: { subjects: hold.subjects, stillHeld: cleared.filter((r) => r.legal_hold).length },
      idempotencyKey: `legal-hold:${id}:released`,
    });
    return released!;
  });

export const getLegalHold = async (db: Db, id: string): Promise<LegalHold | undefined> =>
  (await db.select().from(legalHolds).where(eq(legalHolds.id, id)))[0];

export const legalHoldSubjectIds = async (db: Db, id: string): Promise<string[]> =>
  (
    await db.select({ id: legalHoldSubjects.subjectId }).from(legalHoldSubjects).where(eq(legalHoldSubjects.holdId, id))
  ).map((r) => r.id);
