import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { and, asc, desc, eq, gt, sql, type SQL } from 'drizzle-orm';
import { canonicalJson } from '../domain/canonical-json';
import type { AuditRecord } from '../domain/audit';
import type { Db } from '../db/client';
import { auditLog } from '../db/schema';

export const GENESIS_HASH = '0'.repeat(64);
/** One advisory-lock key serializes every append: the chain has exactly one head. */
const AUDIT_CHAIN_LOCK = 0x6175_6469; // "audi"

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type DbOrTx = Db | Tx;

export interface AuditAppend {
  actor: string;
  action: string;
  targetType: string;
  targetId: string;
  workflowId?: string | null;
  runId?: string | null;
  /** Counts, IDs and codes only: never personal data. */
  details?: Record<string, unknown>;
  /** The same key appends once: a retried activity or request cannot write twice. */
  idempotencyKey: string;
}

type AuditRow = typeof auditLog.$inferSelect;

const hashedContent = (row: Omit<AuditRow, 'prevHash' | 'hash'>) =>
  canonicalJson({
    seq: row.seq,
    at: row.at.toISOString(),
    actor: row.actor,
    action: row.action,
    targetType: row.targetType,
    targetId: row.targetId,
    workflowId: row.workflowId ?? null,
    runId: row.runId ?? null,
    details: row.details,
    idempotencyKey: row.idempotencyKey,
  });

export const entryHash = (prevHash: string, row: Omit<AuditRow, 'prevHash' | 'hash'>): string =>
  createHash('sha256').update(prevHash).update('\n').update(hashedContent(row)).digest('hex');

const toRecord = (row: AuditRow): AuditRecord => ({ ...row, at: row.at.toISOString() });

/** Appends one entry to the chain, or returns the entry already written under the same idempotency key. */
export const appendAudit = (db: DbOrTx, entry: AuditAppend): Promise<AuditRecord> =>
  db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK})`);
    const [existing] = await tx.select().from(auditLog).where(eq(auditLog.idempotencyKey, entry.idempotencyKey));
    if (existing) return toRecord(existing);
    const [head] = await tx
      .select({ seq: auditLog.seq, hash: auditLog.hash })
      .from(auditLog)
      .orderBy(desc(auditLog.seq))
      .limit(1);
    const content = {
      seq: (head?.seq ?? 0) + 1,
      // Millisecond precision: the hash is over the ISO string, which must survive the round trip.
      at: new Date(),
      actor: entry.actor,
      action: entry.action,
      targetType: entry.targetType,
      targetId: entry.targetId,
      workflowId: entry.workflowId ?? null,
      runId: entry.runId ?? null,
      details: entry.details ?? {},
      idempotencyKey: entry.idempotencyKey,
    };
    const prevHash = head?.hash ?? GENESIS_HASH;
    const [row] = await tx
      .insert(auditLog)
      .values({ ...content, prevHash, hash: entryHash(prevHash, content) })
      .returning();
    return toRecord(row!);
  });

export type AuditVerification =
  | { valid: true; entries: number; entriesPerSecond: number; headHash: string }
  | { valid: false; entries: number; firstBrokenSeq: number; reason: string; entriesPerSecond: number };

/** Recomputes the whole chain in order and names the first entry that does not hold. */
export const verifyAuditChain = async (db: DbOrTx, pageSize = 5000): Promise<AuditVerification> => {
  const started = performance.now();
  const rate = (n: number) => Math.round(n / Math.max((performance.now() - started) / 1000, 1e-3));
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let checked = 0;
  for (;;) {
    const page = await db
      .select()
      .from(auditLog)
      .where(gt(auditLog.seq, expectedSeq - 1))
      .orderBy(asc(auditLog.seq))
      .limit(pageSize);
    for (const row of page) {
      const broken = (reason: string): AuditVerification => ({
        valid: false,
        entries: checked,
        firstBrokenSeq: Math.min(row.seq, expectedSeq),
        reason,
        entriesPerSecond: rate(checked),
      });
      if (row.seq !== expectedSeq) return broken(`entry ${expectedSeq} is missing`);
      if (row.prevHash !== prevHash) return broken('prev_hash does not match the previous entry');
      if (entryHash(prevHash, row) !== row.hash) return broken('hash does not match the entry content');
      prevHash = row.hash;
      expectedSeq += 1;
      checked += 1;
    }
    if (page.length < pageSize) break;
  }
  return { valid: true, entries: checked, entriesPerSecond: rate(checked), headHash: prevHash };
};

export interface AuditQuery {
  targetType?: string;
  targetId?: string;
  action?: string;
  /** Keyset paging: entries after this sequence number. */
  after?: number;
  limit: number;
}

export const listAudit = async (db: DbOrTx, q: AuditQuery): Promise<AuditRecord[]> => {
  const filters: SQL[] = [];
  if (q.targetType) filters.push(eq(auditLog.targetType, q.targetType));
  if (q.targetId) filters.push(eq(auditLog.targetId, q.targetId));
  if (q.action) filters.push(eq(auditLog.action, q.action));
  if (q.after !== undefined) filters.push(gt(auditLog.seq, q.after));
  const rows = await db
    .select()
    .from(auditLog)
    .where(and(...filters))
    .orderBy(asc(auditLog.seq))
    .limit(q.limit);
  return rows.map(toRecord);
};

/** Activities: the workflow and run IDs come from the activity context, so every entry names its execution. */
export const auditActivities = (d: { db: Db }) => ({
  async appendAudit(entry: Omit<AuditAppend, 'workflowId' | 'runId'>): Promise<{ seq: number }> {
    const execution = Context.current().info.workflowExecution;
    const record = await appendAudit(d.db, { ...entry, workflowId: execution?.workflowId, runId: execution?.runId });
    return { seq: record.seq };
  },
});
