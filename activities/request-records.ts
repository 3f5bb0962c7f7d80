import { and, asc, count, desc, eq, gt, inArray, lt, notInArray, or, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client';
import { destructionCertificates, fieldObjections, requestEvents, requestExports, requests } from '../db/schema';
import { dueAt, type RequestState, type RequestStatus, type RequestType } from '../domain/request';
import type { RequestTextStore } from './request-texts';

const CLOSED = ['fulfilled', 'refused', 'expired'] as const;
const iso = (d: Date | null | undefined) => d?.toISOString() ?? null;

type Row = typeof requests.$inferSelect;

interface StoredClock {
  kind: string;
  source: string;
  sourceStatus: string;
  windowMs: number;
  maxExtensionMs: number;
  verifyWithinMs: number;
  extensionMs?: number;
  pausedMs?: number;
  pausedSince?: number;
  fired?: string[];
  overridden?: boolean;
}

/** The clock of a row as the workflow last recorded it, with time left now (frozen while paused, null once closed). */
const clockOf = (r: Row, now: number) => {
  const c = r.clock as unknown as StoredClock;
  const state = {
    receivedAt: r.receivedAt.getTime(),
    windowMs: c.windowMs,
    extensionMs: c.extensionMs ?? 0,
    pausedMs: c.pausedMs ?? 0,
    pausedSince: r.status === 'paused' ? c.pausedSince : undefined,
  } as RequestState;
  const closed = (CLOSED as readonly string[]).includes(r.status);
  const due = closed ? r.dueAt.getTime() : dueAt(state, now);
  return {
    due,
    view: {
      kind: c.kind,
      source: c.source,
      sourceStatus: c.sourceStatus,
      windowMs: c.windowMs,
      extensionMs: c.extensionMs ?? 0,
      maxExtensionMs: c.maxExtensionMs,
      pausedMs: c.pausedMs ?? 0,
      paused: r.status === 'paused',
      reminders: c.fired ?? [],
      overridden: c.overridden ?? false,
    },
    timeLeftMs: closed ? null : due - now,
    late: r.late || (!closed && due < now) || (closed && r.closedAt !== null && r.closedAt.getTime() > due),
  };
};

export const requestSummary = (r: Row, now: Date) => {
  const c = clockOf(r, now.getTime());
  return {
    id: r.id,
    type: r.type,
    status: r.status,
    subjectId: r.subjectId,
    channel: r.channel,
    jurisdiction: r.jurisdiction,
    receivedAt: r.receivedAt.toISOString(),
    dueAt: new Date(c.due).toISOString(),
    timeLeftMs: c.timeLeftMs,
    late: c.late,
    assignee: r.assignee,
    outcome: r.outcome,
    closedAt: iso(r.closedAt),
  };
};

export interface RequestListQuery {
  status?: RequestStatus;
  type?: RequestType;
  overdue?: boolean;
  limit: number;
}

export const listRequests = async (db: Db, q: RequestListQuery, now: Date) => {
  const filters: SQL[] = [];
  if (q.status) filters.push(eq(requests.status, q.status));
  if (q.type) filters.push(eq(requests.type, q.type));
  // Overdue: marked late by the clock, or open past its due time (the clock may not have fired yet).
  if (q.overdue === true)
    filters.push(
      or(eq(requests.late, true), and(notInArray(requests.status, [...CLOSED, 'paused']), lt(requests.dueAt, now)))!,
    );
  if (q.overdue === false)
    filters.push(
      and(eq(requests.late, false), or(inArray(requests.status, [...CLOSED, 'paused']), gt(requests.dueAt, now)))!,
    );
  const rows = await db
    .select()
    .from(requests)
    .where(and(...filters))
    .orderBy(desc(requests.receivedAt), desc(requests.id))
    .limit(q.limit);
  return rows.map((r) => requestSummary(r, now));
};

/** The request with its clock, verification, exports (hash and recipient), objections, destruction and timeline. */
export const requestDetail = async (db: Db, texts: RequestTextStore, id: string, now: Date) => {
  const [row] = await db.select().from(requests).where(eq(requests.id, id));
  if (!row) return undefined;
  const [events, exports, objections, certificates] = await Promise.all([
    db
      .select()
      .from(requestEvents)
      .where(eq(requestEvents.requestId, id))
      .orderBy(asc(requestEvents.at), asc(requestEvents.n)),
    db.select().from(requestExports).where(eq(requestExports.requestId, id)).orderBy(asc(requestExports.createdAt)),
    db.select().from(fieldObjections).where(eq(fieldObjections.requestId, id)),
    row.destructionId
      ? db.select().from(destructionCertificates).where(eq(destructionCertificates.destructionId, row.destructionId))
      : Promise.resolve([]),
  ]);
  const clear = await texts.read([...events.map((e) => e.textId), ...objections.map((o) => o.statementTextId)]);
  const c = clockOf(row, now.getTime());
  const verification = row.verification as Record<string, unknown> | null;
  return {
    ...requestSummary(row, now),
    clock: c.view,
    verification: verification ? { method: verification.method, by: verification.by, at: verification.at } : null,
    fields: row.fields,
    purposes: row.purposes,
    category: row.category,
    filedBy: row.filedBy,
    destruction: row.destructionId
      ? {
          id: row.destructionId,
          certificateId: certificates[0]?.id ?? null,
          certificateSha256: certificates[0]?.sha256 ?? null,
        }
      : null,
    exports: exports.map((e) => ({
      id: e.id,
      delivery: e.delivery,
      sha256: e.sha256,
      bytes: e.bytes,
      recipient: e.recipient,
      linkExpiresAt: iso(e.linkExpiresAt),
      servedAt: iso(e.servedAt),
    })),
    objections: objections.map((o) => ({
      field: o.field,
      status: o.status,
      markedAt: o.markedAt.toISOString(),
      resolvedAt: iso(o.resolvedAt),
      statement: o.statementTextId ? (clear.get(o.statementTextId)?.body ?? null) : null,
    })),
    timeline: events.map((e) => ({
      type: e.type,
      at: e.at.toISOString(),
      actor: e.actor,
      details: e.details,
      ...(e.textId ? { text: clear.get(e.textId)?.body ?? null, textKind: clear.get(e.textId)?.kind ?? null } : {}),
    })),
    workflowId: row.workflowId,
  };
};

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

/** Counts by type and status, median and p95 time to close, on-time percentage: what a compliance report needs. */
export const requestStats = async (db: Db, now: Date, since?: Date) => {
  const window = since ? sql`${requests.receivedAt} >= ${since}` : sql`true`;
  const [byType, byStatus, closed, open] = await Promise.all([
    db.select({ key: requests.type, n: count() }).from(requests).where(window).groupBy(requests.type),
    db.select({ key: requests.status, n: count() }).from(requests).where(window).groupBy(requests.status),
    db
      .select({
        receivedAt: requests.receivedAt,
        closedAt: requests.closedAt,
        dueAt: requests.dueAt,
        late: requests.late,
      })
      .from(requests)
      .where(and(window, inArray(requests.status, ['fulfilled', 'refused']))),
    db
      .select({ n: count() })
      .from(requests)
      .where(
        and(window, notInArray(requests.status, [...CLOSED]), or(eq(requests.late, true), lt(requests.dueAt, now))),
      ),
  ]);
  const durations = closed.map((r) => r.closedAt!.getTime() - r.receivedAt.getTime()).sort((a, b) => a - b);
  const onTime = closed.filter((r) => !r.late && r.closedAt!.getTime() <= r.dueAt.getTime()).length;
  return {
    since: iso(since),
    total: byStatus.reduce((n, r) => n + r.n, 0),
    byType: Object.fromEntries(byType.map((r) => [r.key, r.n])),
    byStatus: Object.fromEntries(byStatus.map((r) => [r.key, r.n])),
    closed: closed.length,
    medianTimeToCloseMs: percentile(durations, 50),
    p95TimeToCloseMs: percentile(durations, 95),
    onTimePercent: closed.length === 0 ? null : Math.round((onTime / closed.length) * 1000) / 10,
    overdueOpen: open[0]?.n ?? 0,
  };
};
