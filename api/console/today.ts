import { and, desc, eq, inArray, ne } from 'drizzle-orm';
import type { Db } from '../../db/client';
import { backups, campaigns, incidents, incidentTexts, restoreTests, subjectImports } from '../../db/schema';
import type { Role } from '../../domain/roles';
import { can } from './capabilities';
import { waitingDestructions } from './destruction-pages';
import { dueRequests } from './request-pages';
import { dueObligations } from './obligation-pages';

interface OpenDeadline {
  kind: string;
  authority: string;
  dueAt: number;
  immediate: boolean;
  notifiedAt?: number;
}

export interface TodayIncident {
  id: string;
  title: string;
  severity: string;
  status: string;
  level: number | null;
  acknowledgedBy: string | null;
  /** The earliest regulator deadline not yet met (a figure; "immediately" duties have none). */
  nextDeadline: { kind: string; authority: string; dueAt: Date; timeLeftMs: number } | null;
  late: boolean;
}

export interface TodayFacts {
  /** The moment the facts were read (the service's clock): every "time left" and "age" on the page counts from it. */
  now: number;
  incidents?: TodayIncident[];
  backup?: {
    id: string;
    status: string;
    startedAt: Date;
    snapshotAt: Date | null;
    sizeBytes: number | null;
    test: { status: string; finishedAt: Date | null; rtoMs: number | null; rpoMs: number | null } | null;
  } | null;
  campaigns?: { id: string; total: number; targeted: number; startedAt: Date }[];
  imports?: { id: string; totalLines: number; processedLines: number; startedAt: Date }[];
  destructions?: Awaited<ReturnType<typeof waitingDestructions>>;
  requests?: Awaited<ReturnType<typeof dueRequests>>;
  obligations?: Awaited<ReturnType<typeof dueObligations>>;
}

/**
 * What the home page shows, each part only to the roles whose API route reads it: open incidents (escalation level,
 * the next regulator deadline), the newest data backup and its restore test, running campaigns and imports.
 */
export const todayFacts = async (db: Db, role: Role, now: Date): Promise<TodayFacts> => {
  const facts: TodayFacts = { now: now.getTime() };
  if (can(role, 'viewIncidents')) {
    const rows = await db
      .select({ incident: incidents, title: incidentTexts.body })
      .from(incidents)
      .leftJoin(incidentTexts, eq(incidentTexts.id, incidents.titleTextId))
      .where(ne(incidents.status, 'closed'))
      .orderBy(desc(incidents.openedAt), desc(incidents.id))
      .limit(100);
    facts.incidents = rows.map(({ incident: i, title }) => {
      const open = (i.deadlines as unknown as OpenDeadline[])
        .filter((d) => !d.immediate && d.notifiedAt === undefined)
        .sort((a, b) => a.dueAt - b.dueAt)[0];
      return {
        id: i.id,
        title: title ?? '',
        severity: i.severity,
        status: i.status,
        level: i.escalation?.level ?? null,
        acknowledgedBy: i.acknowledgedBy,
        nextDeadline: open
          ? {
              kind: open.kind,
              authority: open.authority,
              dueAt: new Date(open.dueAt),
              timeLeftMs: open.dueAt - now.getTime(),
            }
          : null,
        late: i.late,
      };
    });
  }
  if (can(role, 'viewBackups')) {
    const [b] = await db
      .select()
      .from(backups)
      .where(and(eq(backups.kind, 'data'), ne(backups.status, 'deleted')))
      .orderBy(desc(backups.startedAt))
      .limit(1);
    const [test] = b
      ? await db
          .select()
          .from(restoreTests)
          .where(eq(restoreTests.backupId, b.id))
          .orderBy(desc(restoreTests.startedAt))
          .limit(1)
      : [];
    facts.backup = b
      ? {
          id: b.id,
          status: b.status,
          startedAt: b.startedAt,
          snapshotAt: b.snapshotAt,
          sizeBytes: b.sizeBytes,
          test: test
            ? { status: test.status, finishedAt: test.finishedAt, rtoMs: test.rtoMs, rpoMs: test.rpoMs }
            : null,
        }
      : null;
  }
  if (can(role, 'viewCampaigns'))
    facts.campaigns = (
      await db
        .select()
        .from(campaigns)
        .where(inArray(campaigns.status, ['running']))
        .orderBy(desc(campaigns.id))
    ).map((r) => ({ id: r.id, total: r.total, targeted: r.targeted, startedAt: r.startedAt }));
  if (can(role, 'viewImports'))
    facts.imports = (
      await db
        .select()
        .from(subjectImports)
        .where(eq(subjectImports.status, 'running'))
        .orderBy(desc(subjectImports.startedAt))
    ).map((r) => ({ id: r.id, totalLines: r.totalLines, processedLines: r.processedLines, startedAt: r.startedAt }));
  if (can(role, 'viewDestruction')) facts.destructions = await waitingDestructions(db);
  if (can(role, 'listRequests')) facts.requests = await dueRequests(db, now);
  if (can(role, 'viewObligations')) facts.obligations = await dueObligations(db, now);
  return facts;
};
