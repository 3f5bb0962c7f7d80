import { createHmac, hkdfSync, randomUUID, timingSafeEqual } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { and, count, desc, eq, isNull } from 'drizzle-orm';
import type { Db } from '../db/client';
import {
  escalationPolicies,
  incidentAffectedSubjects,
  incidentPages,
  incidents,
  incidentTexts,
  incidentTimeline,
  regulatorNotifications,
  subjects,
  users,
} from '../db/schema';
import type { EscalationTarget } from '../domain/escalation';
import { incidentWorkflowId } from '../domain/ids';
import {
  ackTokenBody,
  splitAckToken,
  type AckTokenClaims,
  type SystemIncidentSpec,
  type DeadlineState,
  type EscalationPosition,
  type IncidentInput,
  type IncidentStatus,
} from '../domain/incident';
import type { IncidentTemplate } from '../domain/incident-templates';
import {
  DEFAULT_GRADE_THRESHOLDS,
  deadlinesFor,
  suggestGrade,
  type CnGrade,
  type Deadline,
} from '../domain/regulatory-clocks';
import type { Config } from '../runtime/config';
import type { Keyring } from '../runtime/keyring';
import type { Logger } from '../runtime/logger';
import { appendAudit, appendAuditWith, type AuditAppend } from './audit';
import type { Channel } from './notify-channels';
import { frozenPolicy, getPolicy, onCallAt } from './oncall';
import { storeIncidentText } from './incident-records';
import { staffMessenger, type StaffMessageOutcome } from './staff-messages';

/** The ack-link key: HKDF-SHA256 of the blind-index key under its own label (the consent link has another). */
const ackLinkKey = (keyring: Keyring): Buffer =>
  Buffer.from(hkdfSync('sha256', keyring.blindIndexKey, Buffer.alloc(0), 'custodian/incident-ack-link/v1', 32));

const ackMac = (keyring: Keyring, body: string) => createHmac('sha256', ackLinkKey(keyring)).update(body).digest();

/** A link token for one page (one user, one level of one cycle of one round), expiring at `expiresAt`. */
export const incidentAckToken = (keyring: Keyring, claims: AckTokenClaims): string => {
  const body = ackTokenBody(claims);
  return `${body}.${ackMac(keyring, body).toString('base64url')}`;
};

export type AckTokenVerdict =
  { valid: true; claims: AckTokenClaims } | { valid: false; reason: 'malformed' | 'signature' | 'expired' };

/** Checks the MAC in constant time, then the expiry; single use is the page row's `link_used_at`. */
export const verifyIncidentAckToken = (keyring: Keyring, token: string, now: Date): AckTokenVerdict => {
  const parts = splitAckToken(token);
  if (!parts) return { valid: false, reason: 'malformed' };
  // The text, not the decoded bytes: base64url's last character carries two unused bits, and a decoder ignores them.
  const presented = Buffer.from(parts.mac, 'utf8');
  const expected = Buffer.from(ackMac(keyring, parts.body).toString('base64url'), 'utf8');
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected))
    return { valid: false, reason: 'signature' };
  if (now.getTime() >= parts.claims.expiresAt) return { valid: false, reason: 'expired' };
  return { valid: true, claims: parts.claims };
};

export interface IncidentDeps {
  db: Db;
  keyring: Keyring;
  config: Config;
  logger: Logger;
  clock: () => Date;
  channel?: Channel;
}

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** What an event changes on the incident row (times in epoch ms). */
export interface IncidentPatch {
  status?: IncidentStatus;
  escalation?: EscalationPosition;
  acknowledgedBy?: string | null;
  acknowledgedAt?: number | null;
  late?: boolean;
  gradeConfirmed?: CnGrade;
  gradeConfirmedBy?: string;
  deadlines?: DeadlineState[];
  resolvedAt?: number;
  postmortemDueAt?: number;
  closedAt?: number;
}

/** One timeline event, with its audit entry and the row change, written once under its step key. */
export interface IncidentEvent {
  incidentId: string;
  /** With the workflow ID, the idempotency key (`event-7`, `page-r1-c1-l2` …). */
  step: string;
  /** `triggered`, `acknowledged`, `note`, `status-changed`, … (audited as `incident.<type>`). */
  type: string;
  at: number;
  by: { actor: string; apiKeyId?: string | null };
  /** Codes, IDs, counts: never text. */
  details?: Record<string, unknown>;
  textId?: string;
  patch?: IncidentPatch;
  regulatorNotification?: {
    deadline: string;
    authority: string;
    reference: string;
    notifiedAt: number;
    late: boolean;
    reasonsTextId?: string;
  };
}

export interface OpenedIncident {
  affectedCount: number;
  gradeSuggested: CnGrade;
  deadlines: Deadline[];
}

export interface PageLevelInput {
  incidentId: string;
  round: number;
  cycle: number;
  level: number;
  targets: EscalationTarget[];
  /** When the level was paged (the workflow's time): schedules are asked who is on call then. */
  pagedAt: number;
  ackLinkTtlMs: number;
}

export interface PageLevelResult {
  paged: { userId: string; via: 'user' | 'schedule'; scheduleId?: string; status: string }[];
  /** Schedules that had nobody on call at the time. */
  nobodyOnCall: string[];
}

export interface NotifyIncidentUsersInput {
  incidentId: string;
  step: string;
  template: IncidentTemplate;
  /** Besides every active owner: e.g. the acknowledging responder (`user:<id>`). */
  alsoActor?: string;
  deadline?: { kind: string; authority?: string; dueAt: number; percent?: number };
}

const notFound = (id: string) => ApplicationFailure.nonRetryable(`incident ${id} was not found`, 'IncidentNotFound');

const execution = () => {
  const e = Context.current().info.workflowExecution;
  return { workflowId: e?.workflowId ?? null, runId: e?.runId ?? null };
};

const toDate = (ms: number | null | undefined) => (ms === undefined ? undefined : ms === null ? null : new Date(ms));

const rowPatch = (p: IncidentPatch, at: Date) => ({
  ...(p.status ? { status: p.status } : {}),
  ...(p.escalation ? { escalation: { ...p.escalation, pagedAt: new Date(p.escalation.pagedAt).toISOString() } } : {}),
  ...(p.acknowledgedBy !== undefined ? { acknowledgedBy: p.acknowledgedBy } : {}),
  ...(p.acknowledgedAt !== undefined ? { acknowledgedAt: toDate(p.acknowledgedAt) } : {}),
  ...(p.late !== undefined ? { late: p.late } : {}),
  ...(p.gradeConfirmed ? { gradeConfirmed: p.gradeConfirmed, gradeConfirmedBy: p.gradeConfirmedBy ?? null } : {}),
  ...(p.deadlines ? { deadlines: p.deadlines as unknown as Record<string, unknown>[] } : {}),
  ...(p.resolvedAt !== undefined ? { resolvedAt: toDate(p.resolvedAt) } : {}),
  ...(p.postmortemDueAt !== undefined ? { postmortemDueAt: toDate(p.postmortemDueAt) } : {}),
  ...(p.closedAt !== undefined ? { closedAt: toDate(p.closedAt) } : {}),
  updatedAt: at,
});

/** The timeline row and the row change (and a regulator notification) in `tx`; false if already written. */
const writeEventRows = async (
  tx: Tx,
  e: IncidentEvent,
  at: { workflowId: string | null; runId: string | null; idempotencyKey: string },
): Promise<boolean> => {
  const { workflowId, runId, idempotencyKey } = at;
  const when = new Date(e.at);
  const [written] = await tx
    .insert(incidentTimeline)
    .values({
      incidentId: e.incidentId,
      type: e.type,
      at: when,
      actor: e.by.actor,
      details: e.details ?? {},
      textId: e.textId ?? null,
      idempotencyKey,
      workflowId,
      runId,
    })
    .onConflictDoNothing()
    .returning({ n: incidentTimeline.n });
  if (!written) return false;
  if (e.patch) await tx.update(incidents).set(rowPatch(e.patch, when)).where(eq(incidents.id, e.incidentId));
  if (e.regulatorNotification) {
    const r = e.regulatorNotification;
    await tx.insert(regulatorNotifications).values({
      id: randomUUID(),
      incidentId: e.incidentId,
      deadline: r.deadline,
      authority: r.authority,
      reference: r.reference,
      notifiedAt: new Date(r.notifiedAt),
      late: r.late,
      reasonsTextId: r.reasonsTextId ?? null,
      recordedBy: e.by.actor,
      idempotencyKey,
    });
  }
  return true;
};

/** The event's audit entry; `textHash` is the SHA-256 of its text, when it has one. */
const eventAudit = (
  e: IncidentEvent,
  at: { workflowId: string | null; runId: string | null; idempotencyKey: string },
  textHash?: string,
): AuditAppend => ({
  actor: e.by.actor,
  apiKeyId: e.by.apiKeyId ?? null,
  action: `incident.${e.type}`,
  targetType: 'incident',
  targetId: e.incidentId,
  workflowId: at.workflowId,
  runId: at.runId,
  details: {
    ...(e.details ?? {}),
    ...(e.patch?.status ? { status: e.patch.status } : {}),
    ...(e.textId ? { textId: e.textId, textSha256: textHash ?? null } : {}),
    ...(e.regulatorNotification
      ? {
          deadline: e.regulatorNotification.deadline,
          authority: e.regulatorNotification.authority,
          reference: e.regulatorNotification.reference,
          notifiedAt: new Date(e.regulatorNotification.notifiedAt).toISOString(),
          late: e.regulatorNotification.late,
        }
      : {}),
  },
  idempotencyKey: at.idempotencyKey,
});

const eventKeys = (e: IncidentEvent) => ({
  ...execution(),
  idempotencyKey: `${incidentWorkflowId(e.incidentId)}:${e.step}`,
});

/** The timeline row, the audit entry and the row change in the caller's transaction; false if already written. */
const writeEvent = async (tx: Tx, e: IncidentEvent): Promise<boolean> => {
  const keys = eventKeys(e);
  if (!(await writeEventRows(tx, e, keys))) return false;
  const textHash = e.textId
    ? (await tx.select({ sha256: incidentTexts.sha256 }).from(incidentTexts).where(eq(incidentTexts.id, e.textId)))[0]
        ?.sha256
    : undefined;
  await appendAudit(tx, eventAudit(e, keys, textHash));
  return true;
};

/**
 * An event without a text or a regulator notification (pages, status changes): its rows commit in the audit
 * chain's group transaction with its entry, so a burst of events shares one transaction and one chain lock
 * instead of queueing for the lock one transaction each. The entry is appended whether or not the rows were
 * already written: it is keyed like the timeline row and was committed with it, so a retry gets the one it has.
 */
const writeEventGrouped = async (db: Db, e: IncidentEvent, check?: (tx: Tx) => Promise<void>): Promise<void> => {
  const keys = eventKeys(e);
  await appendAuditWith(db, [eventAudit(e, keys)], async (tx) => {
    await check?.(tx);
    await writeEventRows(tx, e, keys);
  });
};

/**
 * The incident process's effects. Each is idempotent: timeline events, audit entries and regulator notifications
 * are keyed by workflow ID + step, pages by (incident, round, cycle, level, user) and the outbox key.
 */
export const incidentActivities = (d: IncidentDeps) => {
  let messenger: ReturnType<typeof staffMessenger> | undefined;
  const message = () => (messenger ??= staffMessenger(d));
  const base = () => d.config.CUSTODIAN_PUBLIC_URL.replace(/\/$/, '');

  const load = async (incidentId: string) => {
    const [row] = await d.db
      .select({ incident: incidents, title: incidentTexts.body })
      .from(incidents)
      .leftJoin(incidentTexts, eq(incidentTexts.id, incidents.titleTextId))
      .where(eq(incidents.id, incidentId));
    if (!row) throw notFound(incidentId);
    return { ...row.incident, title: row.title ?? '' };
  };

  return {
    /**
     * Records the triggered incident: its row (frozen policy, grade suggested from the affected count), the affected
     * subjects by ID, the first timeline event. Returns what the clocks need; a retry returns the stored answer.
     */
    async openIncident(input: IncidentInput & { openedAt: number }): Promise<OpenedIncident> {
      return d.db.transaction(async (tx) => {
        const [existing] = await tx.select().from(incidents).where(eq(incidents.id, input.incidentId));
        let affectedCount: number;
        let gradeSuggested: CnGrade;
        if (existing) {
          affectedCount = existing.affectedCount;
          gradeSuggested = existing.gradeSuggested as CnGrade;
        } else {
          const ids = input.affected.subjectIds;
          const fromImport = input.affected.importId
            ? ((await tx.select({ n: count() }).from(subjects).where(eq(subjects.importId, input.affected.importId)))[0]
                ?.n ?? 0)
            : 0;
          const registry = ids.length + fromImport;
          affectedCount = Math.max(registry, input.affected.estimatedCount ?? 0);
          gradeSuggested = suggestGrade(affectedCount, input.gradeThresholds);
        }
        const deadlines = deadlinesFor({
          personalData: input.personalData,
          jurisdictions: input.jurisdictions,
          awareAt: input.awareAt,
          grade: gradeSuggested,
          cnOperator: input.cnOperator,
          windows: input.windows,
        });
        if (existing) return { affectedCount, gradeSuggested, deadlines };
        const { workflowId, runId } = execution();
        await tx.insert(incidents).values({
          id: input.incidentId,
          status: 'triggered',
          severity: input.severity,
          category: input.category,
          titleTextId: input.titleTextId,
          personalData: input.personalData,
          jurisdictions: input.jurisdictions,
          awareAt: new Date(input.awareAt),
          openedBy: input.openedBy,
          openedAt: new Date(input.openedAt),
          policyId: input.policy.policyId,
          policy: input.policy as unknown as Record<string, unknown>,
          affectedCount,
          affected: {
            subjectIds: input.affected.subjectIds.length,
            importId: input.affected.importId ?? null,
            estimatedCount: input.affected.estimatedCount ?? null,
          },
          cnOperator: input.cnOperator,
          gradeSuggested,
          deadlines: deadlines.map((x) => ({ ...x, fired: [] })) as unknown as Record<string, unknown>[],
          workflowId,
          runId,
        });
        if (input.affected.subjectIds.length)
          await tx
            .insert(incidentAffectedSubjects)
            .values(input.affected.subjectIds.map((subjectId) => ({ incidentId: input.incidentId, subjectId })))
            .onConflictDoNothing();
        await writeEvent(tx, {
          incidentId: input.incidentId,
          step: 'triggered',
          type: 'triggered',
          at: input.openedAt,
          by: { actor: input.openedBy },
          textId: input.titleTextId,
          details: {
            severity: input.severity,
            category: input.category,
            awareAt: new Date(input.awareAt).toISOString(),
            personalData: input.personalData,
            jurisdictions: input.jurisdictions,
            policyId: input.policy.policyId,
            affectedCount,
            gradeSuggested,
            deadlines: deadlines.map((x) => ({ kind: x.kind, dueAt: new Date(x.dueAt).toISOString() })),
          },
        });
        return { affectedCount, gradeSuggested, deadlines };
      });
    },

    /** A timeline event with its audit entry and row change (and a regulator notification), once per step. */
    async recordIncidentEvent(e: IncidentEvent): Promise<void> {
      const exists = async (tx: Tx) => {
        const [row] = await tx.select({ id: incidents.id }).from(incidents).where(eq(incidents.id, e.incidentId));
        if (!row) throw notFound(e.incidentId);
      };
      if (!e.textId && !e.regulatorNotification) return writeEventGrouped(d.db, e, exists);
      await d.db.transaction(async (tx) => {
        const [row] = await tx.select({ id: incidents.id }).from(incidents).where(eq(incidents.id, e.incidentId));
        if (!row) throw notFound(e.incidentId);
        await writeEvent(tx, e);
      });
    },

    /**
     * Pages one level: its users, and whoever each of its schedules has on call at `pagedAt` (overrides included),
     * each once, with a signed acknowledgement link. One page row per user and step; a retry skips what was sent.
     */
    async pageIncidentLevel(p: PageLevelInput): Promise<PageLevelResult> {
      const incident = await load(p.incidentId);
      const wanted = new Map<string, { via: 'user' | 'schedule'; scheduleId?: string }>();
      const nobodyOnCall: string[] = [];
      for (const t of p.targets) {
        if (t.type === 'user') {
          if (!wanted.has(t.id)) wanted.set(t.id, { via: 'user' });
          continue;
        }
        const on = await onCallAt(d.db, t.id, p.pagedAt).catch(() => undefined);
        if (!on) nobodyOnCall.push(t.id);
        else if (!wanted.has(on.userId)) wanted.set(on.userId, { via: 'schedule', scheduleId: t.id });
      }
      const step = `page-r${p.round}-c${p.cycle}-l${p.level}`;
      const paged: PageLevelResult['paged'] = [];
      let transient: unknown;
      for (const [userId, how] of wanted) {
        const [inserted] = await d.db
          .insert(incidentPages)
          .values({
            id: randomUUID(),
            incidentId: p.incidentId,
            round: p.round,
            cycle: p.cycle,
            level: p.level,
            userId,
            via: how.via,
            scheduleId: how.scheduleId ?? null,
            pagedAt: new Date(p.pagedAt),
            linkExpiresAt: new Date(p.pagedAt + p.ackLinkTtlMs),
          })
          .onConflictDoNothing()
          .returning();
        const [page] = inserted
          ? [inserted]
          : await d.db
              .select()
              .from(incidentPages)
              .where(
                and(
                  eq(incidentPages.incidentId, p.incidentId),
                  eq(incidentPages.round, p.round),
                  eq(incidentPages.cycle, p.cycle),
                  eq(incidentPages.level, p.level),
                  eq(incidentPages.userId, userId),
                ),
              );
        if (!page) throw new Error(`page row of ${step} vanished right after it was written`);
        if (page.status !== 'pending') {
          paged.push({
            userId,
            via: page.via,
            ...(page.scheduleId ? { scheduleId: page.scheduleId } : {}),
            status: page.status,
          });
          continue;
        }
        const token = incidentAckToken(d.keyring, { pageId: page.id, expiresAt: page.linkExpiresAt.getTime() });
        const pageRow = (outcome: StaffMessageOutcome) => {
          const failed = outcome.status === 'failed';
          return {
            status: failed ? ('failed' as const) : ('sent' as const),
            error: failed ? outcome.code : null,
            notificationId: outcome.notificationId,
            sentAt: failed ? null : d.clock(),
          };
        };
        let recorded = false;
        try {
          const outcome = await message()({
            idempotencyKey: `${incidentWorkflowId(p.incidentId)}:${step}:user-${userId}`,
            template: 'incident-page',
            userId,
            about: { type: 'incident', id: p.incidentId },
            params: {
              incidentId: p.incidentId,
              title: incident.title,
              severity: incident.severity,
              status: incident.status,
              round: p.round,
              cycle: p.cycle,
              level: p.level,
              link: `${base()}/incident-ack/${token}`,
            },
            // The page row commits with the outbox row's change.
            within: async (tx, outcome) => {
              recorded = true;
              await tx.update(incidentPages).set(pageRow(outcome)).where(eq(incidentPages.id, page.id));
            },
          });
          // The outbox had it settled (an earlier attempt sent it and stopped before its page row).
          if (!recorded) await d.db.update(incidentPages).set(pageRow(outcome)).where(eq(incidentPages.id, page.id));
          paged.push({
            userId,
            via: how.via,
            ...(how.scheduleId ? { scheduleId: how.scheduleId } : {}),
            status: outcome.status === 'failed' ? 'failed' : 'sent',
          });
        } catch (err) {
          // A channel outage: page the others first, then let Temporal retry this one.
          transient ??= err;
        }
      }
      if (transient) throw transient;
      await writeEventGrouped(d.db, {
        incidentId: p.incidentId,
        step,
        type: 'paged',
        at: p.pagedAt,
        by: { actor: 'system' },
        details: { round: p.round, cycle: p.cycle, level: p.level, pages: paged, nobodyOnCall },
        patch: { escalation: { round: p.round, cycle: p.cycle, level: p.level, pagedAt: p.pagedAt } },
      });
      return { paged, nobodyOnCall };
    },

    /** Tells every active owner (and `alsoActor`) about the incident; one message per user and step. */
    async notifyIncidentUsers(n: NotifyIncidentUsersInput): Promise<{ sent: number; failed: number }> {
      const incident = await load(n.incidentId);
      const owners = await d.db
        .select({ id: users.id })
        .from(users)
        .where(and(eq(users.role, 'owner'), isNull(users.disabledAt)));
      const recipients = new Set(owners.map((o) => o.id));
      const also = n.alsoActor?.startsWith('user:') ? n.alsoActor.slice(5) : undefined;
      if (also) recipients.add(also);
      let sent = 0;
      let failed = 0;
      for (const userId of recipients) {
        const outcome = await message()({
          idempotencyKey: `${incidentWorkflowId(n.incidentId)}:${n.step}:user-${userId}`,
          template: n.template,
          userId,
          about: { type: 'incident', id: n.incidentId },
          params: {
            incidentId: n.incidentId,
            title: incident.title,
            severity: incident.severity,
            status: incident.status,
            ...(n.deadline ? { deadline: { ...n.deadline, dueAt: new Date(n.deadline.dueAt).toISOString() } } : {}),
          },
        });
        if (outcome.status === 'failed') failed++;
        else sent++;
      }
      return { sent, failed };
    },

    /**
     * The input of an incident another process opens (a failed restore test, a stale backup): the configured
     * system escalation policy (CUSTODIAN_SYSTEM_ESCALATION_POLICY) or else the newest policy, a title built from
     * codes and IDs. Undefined when there is no policy to page with (the caller keeps its operator alert).
     * Idempotent: the title row is keyed by the incident ID the workflow chose.
     */
    async prepareSystemIncident(spec: SystemIncidentSpec & { incidentId: string; openedBy: string }) {
      const newest = async () =>
        (
          await d.db
            .select({ id: escalationPolicies.id })
            .from(escalationPolicies)
            .orderBy(desc(escalationPolicies.createdAt))
            .limit(1)
        )[0]?.id;
      const policyId = d.config.CUSTODIAN_SYSTEM_ESCALATION_POLICY ?? (await newest());
      const policy = policyId ? await getPolicy(d.db, policyId) : undefined;
      if (!policy) return undefined;
      const [existing] = await d.db
        .select({ id: incidentTexts.id })
        .from(incidentTexts)
        .where(and(eq(incidentTexts.incidentId, spec.incidentId), eq(incidentTexts.kind, 'title')));
      const titleTextId =
        existing?.id ??
        (
          await storeIncidentText(d.db, {
            incidentId: spec.incidentId,
            kind: 'title',
            body: `${spec.kind}: ${spec.targetType} ${spec.targetId}${spec.reason ? ` (${spec.reason})` : ''}`,
            createdBy: spec.openedBy,
          })
        ).id;
      const input: IncidentInput = {
        incidentId: spec.incidentId,
        titleTextId,
        severity: spec.severity,
        category: spec.category,
        awareAt: d.clock().getTime(),
        personalData: false,
        jurisdictions: [],
        affected: { subjectIds: [] },
        policy: frozenPolicy(policy),
        cnOperator: d.config.CUSTODIAN_CN_OPERATOR_TYPE,
        gradeThresholds: DEFAULT_GRADE_THRESHOLDS,
        windows: {},
        postmortemWithinMs: 5 * 86_400_000,
        openedBy: spec.openedBy,
        ackLinkTtlMs: d.config.CUSTODIAN_ACK_LINK_TTL,
      };
      return input;
    },
  };
};
