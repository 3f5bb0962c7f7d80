import { createHash, randomUUID } from 'node:crypto';
import { and, asc, desc, eq, inArray, lt, or, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client';
import {
  campaigns,
  incidentPages,
  incidents,
  incidentTexts,
  incidentTimeline,
  regulatorNotifications,
} from '../db/schema';
import type { DeadlineState, IncidentStatus, Severity } from '../domain/incident';

export const textSha256 = (body: string) => createHash('sha256').update(body, 'utf8').digest('hex');

/** Stores a text of an incident (title, note, summary, postmortem part, reasons) before the workflow is told. */
export const storeIncidentText = async (
  db: Db,
  t: { incidentId: string; kind: string; body: string; createdBy: string },
): Promise<{ id: string; sha256: string }> => {
  const id = randomUUID();
  const sha256 = textSha256(t.body);
  await db.insert(incidentTexts).values({ id, ...t, sha256 });
  return { id, sha256 };
};

/** Removes texts a refused update left unreferenced. */
export const dropIncidentTexts = async (db: Db, ids: string[]) => {
  if (ids.length) await db.delete(incidentTexts).where(inArray(incidentTexts.id, ids));
};

const iso = (d: Date | null | undefined) => d?.toISOString() ?? null;

export interface IncidentListQuery {
  status?: IncidentStatus;
  severity?: Severity;
  /** `openedAt` (ISO) and ID of the last incident of the previous page. */
  before?: { openedAt: string; id: string };
  limit: number;
}

export const listIncidents = async (db: Db, q: IncidentListQuery) => {
  const filters: SQL[] = [];
  if (q.status) filters.push(eq(incidents.status, q.status));
  if (q.severity) filters.push(eq(incidents.severity, q.severity));
  if (q.before) {
    const at = new Date(q.before.openedAt);
    filters.push(or(lt(incidents.openedAt, at), and(eq(incidents.openedAt, at), lt(incidents.id, q.before.id)))!);
  }
  const rows = await db
    .select({ incident: incidents, title: incidentTexts.body })
    .from(incidents)
    .leftJoin(incidentTexts, eq(incidentTexts.id, incidents.titleTextId))
    .where(and(...filters))
    .orderBy(desc(incidents.openedAt), desc(incidents.id))
    .limit(q.limit);
  return rows.map(({ incident: i, title }) => ({
    id: i.id,
    title: title ?? '',
    status: i.status,
    severity: i.severity,
    category: i.category,
    late: i.late,
    openedAt: i.openedAt.toISOString(),
    awareAt: i.awareAt.toISOString(),
    acknowledgedBy: i.acknowledgedBy,
    escalation: i.escalation,
  }));
};

/** The incident as a reader sees it: state, escalation, pages, deadlines with time left, notifications, timeline. */
export const incidentDetail = async (db: Db, id: string, now: Date) => {
  const [row] = await db.select().from(incidents).where(eq(incidents.id, id));
  if (!row) return undefined;
  const [texts, timeline, pages, notified] = await Promise.all([
    db.select().from(incidentTexts).where(eq(incidentTexts.incidentId, id)),
    db
      .select()
      .from(incidentTimeline)
      .where(eq(incidentTimeline.incidentId, id))
      .orderBy(asc(incidentTimeline.at), asc(incidentTimeline.n)),
    db.select().from(incidentPages).where(eq(incidentPages.incidentId, id)).orderBy(asc(incidentPages.pagedAt)),
    db
      .select()
      .from(regulatorNotifications)
      .where(eq(regulatorNotifications.incidentId, id))
      .orderBy(asc(regulatorNotifications.notifiedAt)),
  ]);
  const text = new Map(texts.map((t) => [t.id, t]));
  const noticeCampaigns = timeline
    .filter((e) => e.type === 'subject-notices-started')
    .map((e) => String(e.details.campaignId));
  const progress = new Map(
    (noticeCampaigns.length ? await db.select().from(campaigns).where(inArray(campaigns.id, noticeCampaigns)) : []).map(
      (r) => [r.id, r],
    ),
  );
  const deadlines = (row.deadlines as unknown as DeadlineState[]).map((d) => ({
    kind: d.kind,
    jurisdiction: d.jurisdiction,
    duty: d.duty,
    authority: d.authority,
    source: d.source,
    sourceStatus: d.sourceStatus,
    immediate: d.immediate,
    startsAt: new Date(d.startsAt).toISOString(),
    dueAt: new Date(d.dueAt).toISOString(),
    /** Negative once overdue; null for "immediately" (no figure) and once met. */
    timeLeftMs: d.immediate || d.notifiedAt !== undefined ? null : d.dueAt - now.getTime(),
    lateNeedsReasons: d.lateNeedsReasons,
    overridden: d.overridden,
    reminders: d.fired,
    notifiedAt: d.notifiedAt === undefined ? null : new Date(d.notifiedAt).toISOString(),
    late: d.late ?? (!d.immediate && d.notifiedAt === undefined && d.dueAt < now.getTime()),
  }));
  // Texts of refused updates are deleted, so the latest of each kind is the one the incident took.
  const latest = (kind: string) =>
    texts.filter((t) => t.kind === kind).sort((x, y) => y.createdAt.getTime() - x.createdAt.getTime())[0]?.body ?? null;
  return {
    id: row.id,
    title: text.get(row.titleTextId)?.body ?? '',
    status: row.status,
    severity: row.severity,
    category: row.category,
    personalData: row.personalData,
    jurisdictions: row.jurisdictions,
    awareAt: row.awareAt.toISOString(),
    openedAt: row.openedAt.toISOString(),
    openedBy: row.openedBy,
    late: row.late,
    policy: row.policy,
    escalation: row.escalation,
    acknowledgedBy: row.acknowledgedBy,
    acknowledgedAt: iso(row.acknowledgedAt),
    affectedCount: row.affectedCount,
    grade: { suggested: row.gradeSuggested, confirmed: row.gradeConfirmed, confirmedBy: row.gradeConfirmedBy },
    cnOperator: row.cnOperator,
    deadlines,
    resolvedAt: iso(row.resolvedAt),
    postmortemDueAt: iso(row.postmortemDueAt),
    postmortemTimeLeftMs:
      row.postmortemDueAt && row.status === 'resolved' ? row.postmortemDueAt.getTime() - now.getTime() : null,
    closedAt: iso(row.closedAt),
    resolutionSummary: latest('resolution-summary'),
    postmortem: row.closedAt
      ? {
          impact: latest('postmortem-impact'),
          timeline: latest('postmortem-timeline'),
          rootCause: latest('postmortem-root-cause'),
          actions: latest('postmortem-actions'),
        }
      : null,
    pages: pages.map((p) => ({
      userId: p.userId,
      round: p.round,
      cycle: p.cycle,
      level: p.level,
      via: p.via,
      scheduleId: p.scheduleId,
      status: p.status,
      error: p.error,
      pagedAt: p.pagedAt.toISOString(),
      sentAt: iso(p.sentAt),
      linkUsedAt: iso(p.linkUsedAt),
    })),
    regulatorNotifications: notified.map((n) => ({
      deadline: n.deadline,
      authority: n.authority,
      reference: n.reference,
      notifiedAt: n.notifiedAt.toISOString(),
      late: n.late,
      reasonsForDelay: n.reasonsTextId ? (text.get(n.reasonsTextId)?.body ?? null) : null,
      recordedBy: n.recordedBy,
    })),
    /** Breach notices to the affected subjects: one campaign each, its progress from the campaign's row. */
    subjectNotices: timeline
      .filter((e) => e.type === 'subject-notices-started')
      .map((e) => {
        const r = progress.get(String(e.details.campaignId));
        return {
          campaignId: String(e.details.campaignId),
          noticeId: String(e.details.noticeId),
          requestedBy: e.actor,
          requestedAt: e.at.toISOString(),
          // No row yet: the campaign's first activity has not run.
          status: r?.status ?? 'starting',
          total: r?.total ?? 0,
          targeted: r?.targeted ?? 0,
          notified: r?.notified ?? 0,
          failed: r?.failed ?? 0,
          finishedAt: iso(r?.finishedAt ?? null),
        };
      }),
    timeline: timeline.map((e) => ({
      type: e.type,
      at: e.at.toISOString(),
      actor: e.actor,
      details: e.details,
      text: e.textId ? (text.get(e.textId)?.body ?? null) : null,
    })),
  };
};
export type IncidentDetail = NonNullable<Awaited<ReturnType<typeof incidentDetail>>>;
