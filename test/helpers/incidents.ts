import { and, asc, eq, like } from 'drizzle-orm';
import { createPolicy, createSchedule, frozenPolicy } from '../../activities/oncall';
import { setUserContact } from '../../activities/user-contacts';
import type { Db } from '../../db/client';
import { incidentPages, notifications } from '../../db/schema';
import { EscalationPolicyRequest, type EscalationTarget } from '../../domain/escalation';
import type { IncidentInput } from '../../domain/incident';
import { OncallSchedule, type OncallScheduleInput } from '../../domain/oncall';
import { DEFAULT_GRADE_THRESHOLDS } from '../../domain/regulatory-clocks';
import type { Role } from '../../domain/roles';
import type { Keyring } from '../../runtime/keyring';
import { seedPrincipal } from './api';

/** A user of the role with an API key and a page contact (the log channel needs a readable address too). */
export const seedStaff = async (db: Db, keyring: Keyring, role: Role, name = `${role} ${Math.random()}`) => {
  const p = await seedPrincipal(db, role, name);
  await setUserContact(
    db,
    keyring,
    p.userId,
    { address: `${p.userId}@ops.example`, locale: 'en' },
    { actor: 'test:seed' },
  );
  return p;
};

/** An escalation policy: levels of targets with waits in seconds. */
export const seedPolicy = async (
  db: Db,
  levels: { targets: EscalationTarget[]; waitSeconds: number }[],
  o: { repeat?: number; reescalateAfterSeconds?: number } = {},
) =>
  createPolicy(
    db,
    EscalationPolicyRequest.parse({
      name: `policy ${Math.random()}`,
      levels: levels.map((l) => ({ targets: l.targets, wait: `${l.waitSeconds} seconds` })),
      repeat: o.repeat ?? 0,
      ...(o.reescalateAfterSeconds ? { reescalateAfter: `${o.reescalateAfterSeconds} seconds` } : {}),
    }),
    { actor: 'test:seed' },
  );

export const seedSchedule = (db: Db, s: Partial<OncallScheduleInput> & Pick<OncallScheduleInput, 'responders'>) =>
  createSchedule(
    db,
    OncallSchedule.parse({
      name: 'rotation',
      timeZone: 'Asia/Shanghai',
      start: '2025-01-01T09:00',
      handoff: { every: 1, unit: 'days' },
      ...s,
    }),
    { actor: 'test:seed' },
  );

export const user = (id: string): EscalationTarget => ({ type: 'user', id });

/** The incident's pages in order: who, which step, when decided and when sent. */
export const pagesOf = async (db: Db, incidentId: string) =>
  db
    .select()
    .from(incidentPages)
    .where(eq(incidentPages.incidentId, incidentId))
    .orderBy(asc(incidentPages.pagedAt), asc(incidentPages.level));

/** Outbox rows of a template for an incident's workflow. */
export const staffMessages = async (db: Db, incidentId: string, template: string) =>
  db
    .select()
    .from(notifications)
    .where(and(like(notifications.idempotencyKey, `incident-${incidentId}:%`), eq(notifications.template, template)))
    .orderBy(asc(notifications.createdAt));

/**
 * The input of a sev1 availability incident without personal data (so no regulator clock) paging `policy`, as
 * POST /v1/incidents would start it; `o` changes what a test needs.
 */
export const plainIncidentInput = (
  incidentId: string,
  titleTextId: string,
  policy: Awaited<ReturnType<typeof seedPolicy>>,
  o: Partial<IncidentInput> = {},
): IncidentInput => ({
  incidentId,
  titleTextId,
  severity: 'sev1',
  category: 'availability',
  awareAt: Date.now(),
  personalData: false,
  jurisdictions: [],
  affected: { subjectIds: [] },
  policy: frozenPolicy(policy),
  cnOperator: 'other',
  gradeThresholds: DEFAULT_GRADE_THRESHOLDS,
  windows: {},
  postmortemWithinMs: 60_000,
  openedBy: 'test',
  ackLinkTtlMs: 3_600_000,
  ...o,
});
