import { Context } from '@temporalio/activity';
import { eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { destructionCertificates, destructions } from '../db/schema';
import type { Catalog } from '../domain/catalog';
import type { DestructionInput, DestructionScope, DestructionStatus } from '../domain/destruction';
import { destructionWorkflowId } from '../domain/ids';
import type { Keyring } from '../runtime/keyring';
import { appendAudit, type DbOrTx } from './audit';
import { decryptField } from './crypto/field-cipher';
import { dataKeys } from './keys';
import { destructionTexts } from './process-texts';
import { pgArray } from './subject-writer';

/** A subject the scope matched, whether a legal hold covers it, and (field scope) the fields it holds. */
export interface Candidate {
  id: string;
  held: boolean;
  fields: string[] | null;
}

const DAY_MS = 86_400_000;

/** `P5Y`, `P6M`, `P90D` added to a date (UTC calendar arithmetic). */
export const addRetention = (from: Date, period: string): Date => {
  const m = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?$/.exec(period);
  if (!m) throw new Error(`not a retention period: ${period}`);
  const d = new Date(from.getTime());
  d.setUTCFullYear(d.getUTCFullYear() + Number(m[1] ?? 0), d.getUTCMonth() + Number(m[2] ?? 0));
  return new Date(d.getTime() + Number(m[3] ?? 0) * DAY_MS);
};

/** The fields of a field scope without subject IDs must each have an anchored retention in the catalog. */
export const unanchoredFields = (catalog: Catalog, fields: readonly string[]): string[] =>
  fields.filter((f) => !catalog.fields[f]?.retentionFrom);

type Deps = { db: Db; keyring: Keyring; catalog: Catalog };

/**
 * Field values past their anchored retention: for each field, the subjects whose anchor date (its `retentionFrom`
 * field, decrypted inside this activity when it is encrypted) plus the field's retention is before `now`.
 */
const anchoredExpired = async (d: Deps, tx: DbOrTx, fields: readonly string[], now: Date) => {
  const expired = new Map<string, string[]>();
  for (const field of fields) {
    const entry = d.catalog.fields[field];
    if (!entry?.retentionFrom) continue;
    const rows = [
      ...(await tx.execute<{
        subject_id: string;
        key_version: number | null;
        ciphertext: Buffer | null;
        plain_value: string | null;
      }>(sql`
        select a.subject_id, a.key_version, a.ciphertext, a.plain_value
        from subject_fields a join subject_fields f on f.subject_id = a.subject_id and f.field = ${field}
        join subjects s on s.id = a.subject_id and s.status <> 'destroyed'
        where a.field = ${entry.retentionFrom}`)),
    ];
    const keys = await dataKeys(d).loadDataKeys(rows.filter((r) => r.ciphertext).map((r) => r.subject_id));
    for (const r of rows) {
      let anchor = r.plain_value;
      if (r.ciphertext) {
        const key = keys.get(r.subject_id);
        if (!key) continue;
        anchor = decryptField(
          key.dek,
          { subjectId: r.subject_id, field: entry.retentionFrom, keyVersion: r.key_version! },
          Buffer.from(r.ciphertext),
        );
      }
      const at = anchor ? new Date(anchor) : undefined;
      if (!at || Number.isNaN(at.getTime()) || addRetention(at, entry.retention) >= now) continue;
      expired.set(r.subject_id, [...(expired.get(r.subject_id) ?? []), field]);
    }
  }
  return expired;
};

/** Subjects with values of `fields` past their anchored retention, each with those fields and its hold. */
const fieldCandidates = async (d: Deps, tx: DbOrTx, fields: readonly string[], now: Date): Promise<Candidate[]> => {
  const expired = await anchoredExpired(d, tx, fields, now);
  if (expired.size === 0) return [];
  const held = new Set(
    [
      ...(await tx.execute<{ id: string }>(sql`
        select id from subjects where id = any(${pgArray([...expired.keys()])}::uuid[]) and legal_hold`)),
    ].map((r) => r.id),
  );
  return [...expired].map(([id, f]) => ({ id, held: held.has(id), fields: f.sort() }));
};

/** The subjects (not destroyed) a scope matches, each with its hold and, for a field scope, the fields it holds. */
export const resolveScope = async (d: Deps, tx: DbOrTx, scope: DestructionScope, now: Date): Promise<Candidate[]> => {
  const today = now.toISOString().slice(0, 10);
  const rows = <R>(q: ReturnType<typeof sql>) => tx.execute<R & Record<string, unknown>>(q).then((r) => [...r]);
  switch (scope.kind) {
    case 'subjects':
      return (
        await rows<{ id: string; legal_hold: boolean }>(sql`
        select id, legal_hold from subjects where id = any(${pgArray(scope.subjectIds)}::uuid[]) and status <> 'destroyed'`)
      ).map((r) => ({ id: r.id, held: r.legal_hold, fields: null }));
    case 'retentionExpired': {
      const whole: Candidate[] = (
        await rows<{ id: string; legal_hold: boolean }>(sql`
        select id, legal_hold from subjects where retention_until < ${today}::date and status <> 'destroyed'`)
      ).map((r) => ({ id: r.id, held: r.legal_hold, fields: null }));
      // Field values past their anchored retention, of subjects that are not going whole.
      const anchored = Object.keys(d.catalog.fields).filter((f) => d.catalog.fields[f]!.retentionFrom);
      if (anchored.length === 0) return whole;
      const going = new Set(whole.map((c) => c.id));
      const partial = [...(await fieldCandidates(d, tx, anchored, now))].filter((c) => !going.has(c.id));
      return [...whole, ...partial];
    }
    case 'consentWithdrawn':
      return (
        await rows<{ id: string; legal_hold: boolean }>(sql`
        select s.id, s.legal_hold from subjects s join purpose_restrictions p on p.subject_id = s.id
        where p.purpose = ${scope.purpose} and p.reason = 'consent-withdrawn' and s.status <> 'destroyed'`)
      ).map((r) => ({ id: r.id, held: r.legal_hold, fields: null }));
    case 'fields': {
      if (scope.subjectIds)
        return (
          await rows<{ id: string; legal_hold: boolean; fields: string[] }>(sql`
          select s.id, s.legal_hold, array_agg(f.field order by f.field) as fields
          from subjects s join subject_fields f on f.subject_id = s.id and f.field = any(${pgArray(scope.fields)}::text[])
          where s.id = any(${pgArray(scope.subjectIds)}::uuid[]) and s.status <> 'destroyed'
          group by s.id, s.legal_hold`)
        ).map((r) => ({ id: r.id, held: r.legal_hold, fields: r.fields }));
      return fieldCandidates(d, tx, scope.fields, now);
    }
  }
};

export const countScope = (candidates: readonly Candidate[]) => {
  const held = candidates.filter((c) => c.held).length;
  return { matched: candidates.length, held, targeted: candidates.length - held };
};

export const execution = () => {
  const run = Context.current().info.workflowExecution;
  return { workflowId: run?.workflowId ?? null, runId: run?.runId ?? null };
};

export interface Opened {
  status: DestructionStatus;
  matched: number;
  held: number;
  targeted: number;
}

/**
 * The workflow's first step: persists the request, resolves the scope once (held subjects reported and excluded) into
 * destruction_targets, audited, in one transaction. A retry finds the row and returns what the first attempt stored.
 */
export const openDestruction = async (d: Deps & { clock: () => Date }, input: DestructionInput): Promise<Opened> => {
  const { workflowId, runId } = execution();
  return d.db.transaction(async (tx) => {
    const [existing] = await tx.select().from(destructions).where(eq(destructions.id, input.destructionId));
    if (existing)
      return { status: existing.status, matched: existing.matched, held: existing.held, targeted: existing.targeted };
    const candidates = await resolveScope(d, tx, input.scope, d.clock());
    const counts = countScope(candidates);
    const status: DestructionStatus = counts.targeted === 0 ? 'refused' : 'awaiting-approval';
    const targets = candidates.filter((c) => !c.held);
    await tx.insert(destructions).values({
      id: input.destructionId,
      status,
      scope: input.scope,
      reason: input.reason ?? null,
      reasonTextId: input.reasonTextId ?? null,
      requestedBy: input.requestedBy,
      origin: input.origin ?? null,
      ...counts,
      outcome:
        status === 'refused'
          ? counts.matched
            ? 'every matched subject is under legal hold'
            : 'the scope matches no subject'
          : null,
      finishedAt: status === 'refused' ? new Date() : null,
      workflowId,
      runId,
    });
    for (let i = 0; i < targets.length; i += 5000) {
      const page = targets.slice(i, i + 5000);
      await tx.execute(sql`
        insert into destruction_targets (destruction_id, subject_id, fields)
        select ${input.destructionId}::uuid, u.id, case when u.fields = '' then null else string_to_array(u.fields, ',') end
        from unnest(${pgArray(page.map((t) => t.id))}::uuid[], ${pgArray(page.map((t) => t.fields?.join(',') ?? ''))}::text[]) as u(id, fields)`);
    }
    await appendAudit(tx, {
      actor: input.requestedBy,
      action: status === 'refused' ? 'destruction.refused' : 'destruction.opened',
      targetType: 'destruction',
      targetId: input.destructionId,
      workflowId,
      runId,
      details: {
        scope: input.scope.kind,
        ...counts,
        origin: input.origin ?? null,
        ...(input.reasonTextId ? { reasonTextId: input.reasonTextId } : {}),
      },
      idempotencyKey: `${destructionWorkflowId(input.destructionId)}:opened`,
    });
    return { status, ...counts };
  });
};

export interface DestructionEvent {
  destructionId: string;
  /** Unique per workflow: the audit entry's key. */
  step: string;
  action: string;
  actor: string;
  apiKeyId?: string;
  details?: Record<string, unknown>;
  patch: Partial<
    Pick<
      typeof destructions.$inferInsert,
      'status' | 'approvals' | 'outcome' | 'autoApproved' | 'subjectsDestroyed' | 'keysDestroyed' | 'fieldRowsDeleted'
    > & {
      approvalDeadline: number;
      graceUntil: number;
      finished: boolean;
    }
  >;
}

/** A state change of the request (absolute values, so a retry writes the same), audited in the same transaction. */
export const recordDestructionEvent = async (db: Db, e: DestructionEvent): Promise<void> => {
  const { workflowId, runId } = execution();
  const { approvalDeadline, graceUntil, finished, ...rest } = e.patch;
  await db.transaction(async (tx) => {
    await tx
      .update(destructions)
      .set({
        ...rest,
        ...(approvalDeadline === undefined ? {} : { approvalDeadline: new Date(approvalDeadline) }),
        ...(graceUntil === undefined ? {} : { graceUntil: new Date(graceUntil) }),
        ...(finished ? { finishedAt: new Date() } : {}),
        updatedAt: new Date(),
      })
      .where(eq(destructions.id, e.destructionId));
    await appendAudit(tx, {
      actor: e.actor,
      apiKeyId: e.apiKeyId ?? null,
      action: e.action,
      targetType: 'destruction',
      targetId: e.destructionId,
      workflowId,
      runId,
      details: e.details ?? {},
      idempotencyKey: `${destructionWorkflowId(e.destructionId)}:${e.step}`,
    });
  });
};

/** The request as the API shows it, its texts joined back, with its certificate once issued. */
export const destructionDetail = async (db: Db, id: string) => {
  const [row] = await db.select().from(destructions).where(eq(destructions.id, id));
  if (!row) return undefined;
  const [[certificate], texts] = await Promise.all([
    db.select().from(destructionCertificates).where(eq(destructionCertificates.destructionId, id)),
    destructionTexts.read(db, id),
  ]);
  const iso = (x: Date | null) => x?.toISOString() ?? null;
  const body = (textId: string | null | undefined) => (textId ? (texts.get(textId)?.body ?? null) : null);
  // A refused cancellation's text is dropped; of those taken, the first one cancelled the request.
  const [cancelReason] = [...texts.values()]
    .filter((t) => t.kind === 'cancel-reason')
    .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  return {
    id: row.id,
    status: row.status,
    scope: row.scope,
    reason: body(row.reasonTextId) ?? row.reason,
    requestedBy: row.requestedBy,
    origin: row.origin,
    autoApproved: row.autoApproved,
    matched: row.matched,
    held: row.held,
    targeted: row.targeted,
    subjectsDestroyed: row.subjectsDestroyed,
    keysDestroyed: row.keysDestroyed,
    fieldRowsDeleted: row.fieldRowsDeleted,
    approvals: row.approvals.map(({ commentTextId, comment, ...a }) => ({
      ...a,
      comment: body(commentTextId) ?? comment ?? null,
    })),
    approvalDeadline: iso(row.approvalDeadline),
    graceUntil: iso(row.graceUntil),
    outcome: row.outcome,
    cancelReason: row.status === 'cancelled' ? (cancelReason?.body ?? null) : null,
    createdAt: row.createdAt.toISOString(),
    finishedAt: iso(row.finishedAt),
    workflowId: row.workflowId,
    certificate: certificate
      ? {
          id: certificate.id,
          sha256: certificate.sha256,
          certificate: certificate.certificate,
          signature: certificate.signature,
        }
      : null,
  };
};
