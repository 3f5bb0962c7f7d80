import { randomUUID } from 'node:crypto';
import { and, asc, eq, inArray, isNull } from 'drizzle-orm';
import type { Db } from '../db/client';
import { escalationPolicies, oncallSchedules, users } from '../db/schema';
import { DomainError } from '../domain/errors';
import { freezePolicy, type EscalationPolicyRequest, type FrozenPolicy } from '../domain/escalation';
import { OncallSchedule, whoIsOnCall, type OnCall, type OncallOverride } from '../domain/oncall';
import { appendAudit } from './audit';
import type { Actor } from './users';

type ScheduleRow = typeof oncallSchedules.$inferSelect;
type PolicyRow = typeof escalationPolicies.$inferSelect;

/** The domain schedule of a stored row (overrides' instants back to epoch ms). */
export const scheduleOf = (row: ScheduleRow): OncallSchedule =>
  OncallSchedule.parse({
    name: row.name,
    timeZone: row.timeZone,
    start: row.startLocal,
    handoff: { every: row.handoffEvery, unit: row.handoffUnit },
    responders: row.responders,
    overrides: row.overrides.map(({ userId, from, to }) => ({ userId, from, to })),
  });

export interface ScheduleView {
  id: string;
  name: string;
  timeZone: string;
  start: string;
  handoff: { every: number; unit: ScheduleRow['handoffUnit'] };
  responders: string[];
  overrides: { userId: string; from: string; to: string; addedBy: string }[];
  createdBy: string;
  createdAt: string;
}

export const scheduleView = (row: ScheduleRow): ScheduleView => ({
  id: row.id,
  name: row.name,
  timeZone: row.timeZone,
  start: row.startLocal,
  handoff: { every: row.handoffEvery, unit: row.handoffUnit },
  responders: row.responders,
  overrides: row.overrides,
  createdBy: row.createdBy,
  createdAt: row.createdAt.toISOString(),
});

/** Of the given user IDs, those that are not active responders (by position in the list). */
export const notResponders = async (db: Db, ids: string[]): Promise<number[]> => {
  if (ids.length === 0) return [];
  const rows = await db
    .select({ id: users.id })
    .from(users)
    .where(and(inArray(users.id, [...new Set(ids)]), eq(users.role, 'responder'), isNull(users.disabledAt)));
  const ok = new Set(rows.map((r) => r.id));
  return ids.flatMap((id, i) => (ok.has(id) ? [] : [i]));
};

const iso = (ms: number) => new Date(ms).toISOString();

export const createSchedule = (db: Db, s: OncallSchedule, by: Actor): Promise<ScheduleView> =>
  db.transaction(async (tx) => {
    const id = randomUUID();
    const [row] = await tx
      .insert(oncallSchedules)
      .values({
        id,
        name: s.name,
        timeZone: s.timeZone,
        startLocal: s.start,
        handoffEvery: s.handoff.every,
        handoffUnit: s.handoff.unit,
        responders: s.responders,
        overrides: s.overrides.map((o) => ({ userId: o.userId, from: iso(o.from), to: iso(o.to), addedBy: by.actor })),
        createdBy: by.actor,
      })
      .returning();
    await appendAudit(tx, {
      ...by,
      action: 'oncall-schedule.created',
      targetType: 'oncall-schedule',
      targetId: id,
      details: {
        timeZone: s.timeZone,
        handoff: s.handoff,
        responders: s.responders,
        overrides: s.overrides.length,
      },
      idempotencyKey: `oncall-schedule.created:${id}`,
    });
    return scheduleView(row!);
  });

/** Appends an override; a later override wins where two overlap. */
export const addOverride = (db: Db, scheduleId: string, o: OncallOverride, by: Actor): Promise<ScheduleView> =>
  db.transaction(async (tx) => {
    const [row] = await tx.select().from(oncallSchedules).where(eq(oncallSchedules.id, scheduleId)).for('update');
    if (!row) throw DomainError.notFound(`on-call schedule ${scheduleId}`);
    const override = { userId: o.userId, from: iso(o.from), to: iso(o.to), addedBy: by.actor };
    const [updated] = await tx
      .update(oncallSchedules)
      .set({ overrides: [...row.overrides, override], updatedAt: new Date() })
      .where(eq(oncallSchedules.id, scheduleId))
      .returning();
    await appendAudit(tx, {
      ...by,
      action: 'oncall-schedule.override-added',
      targetType: 'oncall-schedule',
      targetId: scheduleId,
      details: { userId: o.userId, from: override.from, to: override.to, index: row.overrides.length },
      idempotencyKey: `oncall-schedule.override-added:${scheduleId}:${row.overrides.length}`,
    });
    return scheduleView(updated!);
  });

export const getSchedule = async (db: Db, id: string): Promise<ScheduleRow | undefined> =>
  (await db.select().from(oncallSchedules).where(eq(oncallSchedules.id, id)))[0];

export const listSchedules = (db: Db) => db.select().from(oncallSchedules).orderBy(asc(oncallSchedules.createdAt));

/** Who a schedule has on call at `at` (overrides included), or undefined before its rotation starts. */
export const onCallAt = async (db: Db, scheduleId: string, at: number): Promise<OnCall | undefined> => {
  const row = await getSchedule(db, scheduleId);
  if (!row) throw DomainError.notFound(`on-call schedule ${scheduleId}`);
  return whoIsOnCall(scheduleOf(row), at);
};

export interface PolicyView {
  id: string;
  name: string;
  levels: { targets: { type: 'user' | 'schedule'; id: string }[]; waitMs: number }[];
  repeat: number;
  reescalateAfterMs: number | null;
  createdBy: string;
  createdAt: string;
}

const policyView = (row: PolicyRow): PolicyView => ({
  id: row.id,
  name: row.name,
  levels: row.levels,
  repeat: row.repeat,
  reescalateAfterMs: row.reescalateAfterMs,
  createdBy: row.createdBy,
  createdAt: row.createdAt.toISOString(),
});

/** Targets that do not exist: user targets must be active responders, schedule targets must exist. */
export const unknownTargets = async (
  db: Db,
  p: EscalationPolicyRequest,
): Promise<{ path: string; message: string }[]> => {
  const targets = p.levels.flatMap((l, li) =>
    l.targets.map((t, ti) => ({ ...t, path: `levels.${li}.targets.${ti}.id` })),
  );
  const userTargets = targets.filter((t) => t.type === 'user');
  const bad = new Set(
    (
      await notResponders(
        db,
        userTargets.map((t) => t.id),
      )
    ).map((i) => userTargets[i]!.path),
  );
  const scheduleIds = [...new Set(targets.filter((t) => t.type === 'schedule').map((t) => t.id))];
  const found = scheduleIds.length
    ? new Set(
        (
          await db
            .select({ id: oncallSchedules.id })
            .from(oncallSchedules)
            .where(inArray(oncallSchedules.id, scheduleIds))
        ).map((r) => r.id),
      )
    : new Set<string>();
  return targets.flatMap((t) => {
    if (t.type === 'user' && bad.has(t.path)) return [{ path: t.path, message: 'not an active responder' }];
    if (t.type === 'schedule' && !found.has(t.id)) return [{ path: t.path, message: 'no such on-call schedule' }];
    return [];
  });
};

export const createPolicy = (db: Db, p: EscalationPolicyRequest, by: Actor): Promise<PolicyView> =>
  db.transaction(async (tx) => {
    const id = randomUUID();
    const frozen = freezePolicy(id, p);
    const [row] = await tx
      .insert(escalationPolicies)
      .values({
        id,
        name: p.name,
        levels: frozen.levels,
        repeat: frozen.repeat,
        reescalateAfterMs: frozen.reescalateAfterMs ?? null,
        createdBy: by.actor,
      })
      .returning();
    await appendAudit(tx, {
      ...by,
      action: 'escalation-policy.created',
      targetType: 'escalation-policy',
      targetId: id,
      details: { levels: frozen.levels, repeat: frozen.repeat, reescalateAfterMs: frozen.reescalateAfterMs ?? null },
      idempotencyKey: `escalation-policy.created:${id}`,
    });
    return policyView(row!);
  });

export const listPolicies = async (db: Db): Promise<PolicyView[]> =>
  (await db.select().from(escalationPolicies).orderBy(asc(escalationPolicies.createdAt))).map(policyView);

export const getPolicy = async (db: Db, id: string): Promise<PolicyView | undefined> => {
  const [row] = await db.select().from(escalationPolicies).where(eq(escalationPolicies.id, id));
  return row && policyView(row);
};

/** The policy as an incident freezes it. */
export const frozenPolicy = (p: PolicyView): FrozenPolicy => ({
  policyId: p.id,
  levels: p.levels,
  repeat: p.repeat,
  ...(p.reescalateAfterMs === null ? {} : { reescalateAfterMs: p.reescalateAfterMs }),
});
