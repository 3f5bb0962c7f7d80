import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { and, asc, desc, eq, getTableColumns, gt, inArray, lt, lte, or, sql, type SQL } from 'drizzle-orm';
import { PgTransaction } from 'drizzle-orm/pg-core';
import { canonicalJson } from '../domain/canonical-json';
import type { AuditRecord } from '../domain/audit';
import type { Db } from '../db/client';
import { auditLog } from '../db/schema';

export const GENESIS_HASH = '0'.repeat(64);
/** One advisory-lock key serializes every append: the chain has exactly one head. */
const AUDIT_CHAIN_LOCK = 0x6175_6469; // "audi"
/** Entries per group commit (one INSERT, one JSON parameter). */
const MAX_GROUP_ENTRIES = 1000;

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type DbOrTx = Db | Tx;

type AuditRow = typeof auditLog.$inferSelect;
type EntryColumn = Exclude<keyof AuditRow, 'seq' | 'at' | 'prevHash' | 'hash'>;

/**
 * The columns a caller supplies; with `seq` and `at` they are the hashed content, and the one list both the
 * append and the hash read. `satisfies` fails to compile when a column of audit_log is missing from it.
 */
const ENTRY_COLUMNS = Object.keys({
  actor: true,
  action: true,
  targetType: true,
  targetId: true,
  workflowId: true,
  runId: true,
  apiKeyId: true,
  details: true,
  idempotencyKey: true,
} satisfies Record<EntryColumn, true>) as EntryColumn[];

type HashedContent = Pick<AuditRow, 'seq' | 'at' | EntryColumn>;

export interface AuditAppend {
  actor: string;
  action: string;
  targetType: string;
  targetId: string;
  workflowId?: string | null;
  runId?: string | null;
  /** The API key the actor used, when the change came through the API. */
  apiKeyId?: string | null;
  /** Counts, IDs and codes only: never personal data. */
  details?: Record<string, unknown>;
  /** The same key appends once: a retried activity or request cannot write twice. */
  idempotencyKey: string;
}

const hashedContent = (row: HashedContent): string => {
  const content: Record<string, unknown> = { seq: row.seq, at: row.at.toISOString() };
  for (const column of ENTRY_COLUMNS) content[column] = row[column] ?? null;
  // Entries written before api_key_id existed were hashed without it, so it is hashed only when set.
  if (content.apiKeyId === null) delete content.apiKeyId;
  return canonicalJson(content);
};

export const entryHash = (prevHash: string, row: HashedContent): string =>
  createHash('sha256').update(prevHash).update('\n').update(hashedContent(row)).digest('hex');

const entryContent = (entry: AuditAppend, seq: number, at: Date): HashedContent => ({
  ...(Object.fromEntries(ENTRY_COLUMNS.map((column) => [column, entry[column] ?? null])) as Omit<
    HashedContent,
    'seq' | 'at'
  >),
  // Hashed as jsonb will hold it (undefined members dropped), so the chain verifies after the round trip.
  details: JSON.parse(JSON.stringify(entry.details ?? {})) as Record<string, unknown>,
  seq,
  at,
});

const toRecord = (row: AuditRow): AuditRecord => ({ ...row, at: row.at.toISOString() });

const COLUMNS = Object.entries(getTableColumns(auditLog));
const COLUMN_NAMES = sql.raw(COLUMNS.map(([, column]) => column.name).join(', '));
const RECORD_TYPE = sql.raw(COLUMNS.map(([, column]) => `${column.name} ${column.getSQLType()}`).join(', '));

/**
 * The whole group as one JSON parameter: drizzle's multi-row insert builder spent ~150 µs of CPU per row
 * (measured), more than PostgreSQL spends on it.
 */
const insertRows = (tx: DbOrTx, rows: AuditRow[]) => {
  const json = JSON.stringify(
    rows.map((row) => Object.fromEntries(COLUMNS.map(([key, column]) => [column.name, row[key as keyof AuditRow]]))),
  );
  return tx.execute(
    sql`insert into ${auditLog} (${COLUMN_NAMES}) select ${COLUMN_NAMES} from jsonb_to_recordset(${json}::jsonb) as r(${RECORD_TYPE})`,
  );
};

/** Writes entries under the chain lock inside `tx`; an entry whose idempotency key exists returns that entry. */
const writeEntries = async (tx: DbOrTx, entries: AuditAppend[]): Promise<AuditRecord[]> => {
  await tx.execute(sql`select pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK})`);
  const keys = new Set(entries.map((e) => e.idempotencyKey));
  // One round trip: the entries already written under these keys, and the head.
  const found = await tx
    .select()
    .from(auditLog)
    .where(or(inArray(auditLog.idempotencyKey, [...keys]), eq(auditLog.seq, sql`(select max(seq) from ${auditLog})`)));
  const byKey = new Map(
    found.filter((row) => keys.has(row.idempotencyKey)).map((row) => [row.idempotencyKey, toRecord(row)]),
  );
  const head = found.reduce<AuditRow | undefined>((max, row) => (max && max.seq > row.seq ? max : row), undefined);
  let seq = head?.seq ?? 0;
  let prevHash = head?.hash ?? GENESIS_HASH;
  // Millisecond precision: the hash is over the ISO string, which must survive the round trip.
  const at = new Date();
  const rows: AuditRow[] = [];
  const records = entries.map((entry) => {
    const known = byKey.get(entry.idempotencyKey);
    if (known) return known;
    const content = entryContent(entry, ++seq, at);
    const row = { ...content, prevHash, hash: entryHash(prevHash, content) };
    prevHash = row.hash;
    rows.push(row);
    const record = toRecord(row);
    byKey.set(entry.idempotencyKey, record);
    return record;
  });
  if (rows.length > 0) await insertRows(tx, rows);
  return records;
};

/** Statements that commit with the entries (the change they record); they run before the chain lock is taken. */
export type WithEntries = (tx: Tx) => Promise<void>;

interface PendingAppend {
  entries: AuditAppend[];
  within?: WithEntries;
  resolve: (records: AuditRecord[]) => void;
  reject: (error: unknown) => void;
}

/** Appenders on one pool share a transaction: while one group commits under the lock, the next one gathers. */
class AuditGroupCommit {
  private queue: PendingAppend[] = [];
  private committing = false;

  constructor(private readonly db: Db) {}

  append(entries: AuditAppend[], within?: WithEntries): Promise<AuditRecord[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ entries, ...(within ? { within } : {}), resolve, reject });
      if (!this.committing) void this.drain();
    });
  }

  private async drain() {
    this.committing = true;
    while (this.queue.length > 0) {
      // Callers just answered append again within this turn: let them join the next group, not the one after.
      await new Promise(setImmediate);
      const group = this.takeGroup();
      try {
        const records = await this.commit(group);
        let at = 0;
        for (const p of group) p.resolve(records.slice(at, (at += p.entries.length)));
      } catch (error) {
        if (group.length === 1) group[0]!.reject(error);
        // One failing caller must not fail the others: each commits alone, and only the bad one fails.
        else for (const p of group) await this.commit([p]).then(p.resolve, p.reject);
      }
    }
    this.committing = false;
  }

  private takeGroup(): PendingAppend[] {
    let entries = 0;
    let count = 0;
    while (
      count < this.queue.length &&
      (count === 0 || entries + this.queue[count]!.entries.length <= MAX_GROUP_ENTRIES)
    ) {
      entries += this.queue[count]!.entries.length;
      count += 1;
    }
    return this.queue.splice(0, count);
  }

  private commit(group: PendingAppend[]) {
    return this.db.transaction(async (tx) => {
      // Row locks before the chain lock, as a caller's own transaction takes them: no lock-order deadlock. The
      // changes are issued together, so postgres.js pipelines them on the connection: one wait, not one per change.
      const changes = await Promise.allSettled(group.map((p) => p.within?.(tx)));
      const refused = changes.find((c) => c.status === 'rejected');
      if (refused) throw refused.reason;
      return writeEntries(
        tx,
        group.flatMap((p) => p.entries),
      );
    });
  }
}

const groupCommits = new WeakMap<Db, AuditGroupCommit>();

/**
 * Appends entries to the chain in order, each returned (or, for a known idempotency key, the entry already
 * written). Inside a caller's transaction they commit with it; on the pool they join a group commit.
 */
export const appendAuditEntries = async (db: DbOrTx, entries: AuditAppend[]): Promise<AuditRecord[]> => {
  if (entries.length === 0) return [];
  if (db instanceof PgTransaction) return writeEntries(db, entries);
  let group = groupCommits.get(db);
  if (!group) groupCommits.set(db, (group = new AuditGroupCommit(db)));
  return group.append(entries);
};

/**
 * Appends entries together with the change they record: `within` runs in the same transaction (on the pool, the
 * group's), so the change and its entries commit or roll back as one. Idempotent as long as `within` is.
 */
export const appendAuditWith = async (
  db: DbOrTx,
  entries: AuditAppend[],
  within: WithEntries,
): Promise<AuditRecord[]> => {
  if (db instanceof PgTransaction) {
    await within(db);
    return writeEntries(db, entries);
  }
  let group = groupCommits.get(db);
  if (!group) groupCommits.set(db, (group = new AuditGroupCommit(db)));
  return group.append(entries, within);
};

/** Appends one entry to the chain, or returns the entry already written under the same idempotency key. */
export const appendAudit = async (db: DbOrTx, entry: AuditAppend): Promise<AuditRecord> =>
  (await appendAuditEntries(db, [entry]))[0]!;

export interface ChainBreak {
  seq: number;
  reason: string;
}

export interface ChainWalk {
  checked: number;
  /** The last entry that held (the starting point when none did). */
  lastSeq: number;
  headHash: string;
  broken?: ChainBreak;
}

/**
 * Recomputes the entries after `from` (the seq and hash of the entry before them) in order, up to `until`.
 * `visit` sees each entry that holds and may itself name a break (a checkpoint the entry contradicts).
 */
export const walkChain = async (
  db: DbOrTx,
  from: { seq: number; hash: string },
  visit: (seq: number, hash: string) => ChainBreak | undefined = () => undefined,
  until = Number.MAX_SAFE_INTEGER,
  pageSize = 5000,
): Promise<ChainWalk> => {
  let expectedSeq = from.seq + 1;
  let prevHash = from.hash;
  let checked = 0;
  const walked = (broken?: ChainBreak): ChainWalk => ({
    checked,
    lastSeq: expectedSeq - 1,
    headHash: prevHash,
    broken,
  });
  for (;;) {
    const page = await db
      .select()
      .from(auditLog)
      .where(and(gt(auditLog.seq, expectedSeq - 1), lte(auditLog.seq, until)))
      .orderBy(asc(auditLog.seq))
      .limit(pageSize);
    for (const row of page) {
      if (row.seq !== expectedSeq) return walked({ seq: expectedSeq, reason: `entry ${expectedSeq} is missing` });
      if (row.prevHash !== prevHash) {
        return walked({ seq: row.seq, reason: 'prev_hash does not match the previous entry' });
      }
      if (entryHash(prevHash, row) !== row.hash) {
        return walked({ seq: row.seq, reason: 'hash does not match the entry content' });
      }
      const contradicted = visit(row.seq, row.hash);
      if (contradicted) return walked(contradicted);
      prevHash = row.hash;
      expectedSeq += 1;
      checked += 1;
    }
    if (page.length < pageSize) return walked();
  }
};

export interface AuditQuery {
  targetType?: string;
  targetId?: string;
  action?: string;
  /** The audit actor (`user:<id>`, `cli`, `system:…`). */
  actor?: string;
  /** Keyset paging: entries after this sequence number. */
  after?: number;
  /** Keyset paging backwards (newest first): entries before this sequence number. */
  before?: number;
  /** The newest entries first (the console's trail); chain order otherwise. */
  newestFirst?: boolean;
  limit: number;
}

export const listAudit = async (db: DbOrTx, q: AuditQuery): Promise<AuditRecord[]> => {
  const filters: SQL[] = [];
  if (q.targetType) filters.push(eq(auditLog.targetType, q.targetType));
  if (q.targetId) filters.push(eq(auditLog.targetId, q.targetId));
  if (q.action) filters.push(eq(auditLog.action, q.action));
  if (q.actor) filters.push(eq(auditLog.actor, q.actor));
  if (q.after !== undefined) filters.push(gt(auditLog.seq, q.after));
  if (q.before !== undefined) filters.push(lt(auditLog.seq, q.before));
  const rows = await db
    .select()
    .from(auditLog)
    .where(and(...filters))
    .orderBy(q.newestFirst ? desc(auditLog.seq) : asc(auditLog.seq))
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
