import { createHash, randomUUID } from 'node:crypto';
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  WorkflowFailedError,
  type Client,
  type ScheduleDescription,
  type ScheduleHandle,
  type ScheduleSpec as TemporalScheduleSpec,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from '../db/client';
import { canonicalJson } from '../domain/canonical-json';
import { DomainError } from '../domain/errors';
import {
  isoDuration,
  specOf,
  specText,
  type ScheduleDefinition,
  type SchedulePatch,
  type ScheduleSpec,
} from '../domain/schedules';
import { appendAudit } from './audit';

/**
 * The recurring reviews on Temporal: upsert at worker start, read, edit and trigger for the API. Not Temporal
 * activities: the worker's start-up and the routes call them with the process's client.
 *
 * What was last declared is remembered in the action's memo as two hashes, one of the definition (spec, input,
 * task queue, policies) and one of the state (paused, note). A start-up changes only what the declaration changed
 * since the last upsert, so an operator's edit through the API survives restarts until the code or file changes it.
 */

const SCHEDULED_RUN = 'scheduledRun';

interface ScheduleMemo {
  schedule: string;
  definitionHash: string;
  stateHash: string;
  /** The spec as set (cron text or ISO interval); Temporal returns cron compiled into calendars. */
  spec: { cron: string } | { every: string };
}

const sha256 = (value: unknown) => createHash('sha256').update(canonicalJson(value)).digest('hex');

const definitionHash = (d: ScheduleDefinition) =>
  sha256({
    workflowType: SCHEDULED_RUN,
    launch: d.launch,
    taskQueue: d.taskQueue,
    spec: d.spec,
    catchupWindowMs: d.catchupWindowMs,
    overlap: 'SKIP',
  });
const stateHash = (d: ScheduleDefinition) => sha256({ paused: d.paused, note: d.note });

const memoOf = (d: ScheduleDefinition): ScheduleMemo => ({
  schedule: d.name,
  definitionHash: definitionHash(d),
  stateHash: stateHash(d),
  spec: specText(d.spec),
});

const readMemo = (described: ScheduleDescription): Partial<ScheduleMemo> =>
  (described.action.memo ?? {}) as Partial<ScheduleMemo>;

const temporalSpec = (spec: ScheduleSpec): TemporalScheduleSpec =>
  'cron' in spec ? { cronExpressions: [spec.cron] } : { intervals: [{ every: spec.everyMs }] };

const actionOf = (d: ScheduleDefinition, memo: ScheduleMemo) => ({
  type: 'startWorkflow' as const,
  workflowType: SCHEDULED_RUN,
  // Temporal appends the scheduled time: `schedule-backup-2026-06-01T02:00:00Z`.
  workflowId: d.scheduleId,
  taskQueue: d.taskQueue,
  args: [d.launch],
  memo: { ...memo },
});

const policiesOf = (d: ScheduleDefinition) => ({
  overlap: ScheduleOverlapPolicy.SKIP,
  catchupWindow: d.catchupWindowMs,
});

const describeIfAny = async (handle: ScheduleHandle): Promise<ScheduleDescription | undefined> => {
  try {
    return await handle.describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  }
};

export type UpsertOutcome = 'created' | 'updated' | 'unchanged';

/** Creates the schedule, or updates what its declaration changed since the last upsert; idempotent. */
export const upsertSchedule = async (client: Client, d: ScheduleDefinition): Promise<UpsertOutcome> => {
  const handle = client.schedule.getHandle(d.scheduleId);
  let current = await describeIfAny(handle);
  if (!current) {
    try {
      await client.schedule.create({
        scheduleId: d.scheduleId,
        spec: temporalSpec(d.spec),
        action: actionOf(d, memoOf(d)),
        policies: policiesOf(d),
        state: { paused: d.paused, note: d.note },
      });
      return 'created';
    } catch (err) {
      // Another worker created it first: treat it as found.
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      current = await handle.describe();
    }
  }
  const memo = readMemo(current);
  const definitionChanged = memo.definitionHash !== definitionHash(d);
  const stateChanged = memo.stateHash !== stateHash(d);
  if (!definitionChanged && !stateChanged) return 'unchanged';
  await handle.update((previous) => ({
    spec: definitionChanged ? temporalSpec(d.spec) : previous.spec,
    action: actionOf(d, { ...memoOf(d), spec: definitionChanged ? specText(d.spec) : (memo.spec ?? specText(d.spec)) }),
    policies: definitionChanged ? policiesOf(d) : previous.policies,
    state: stateChanged
      ? { paused: d.paused, note: d.note }
      : { paused: previous.state.paused, note: previous.state.note },
  }));
  return 'updated';
};

/**
 * Every declared schedule, one after another (a handful; order keeps the log readable). A creation or an update
 * is audited as `schedule.created` / `schedule.updated` by the system, with the spec and state it set.
 */
export const upsertSchedules = async (
  { client, db }: { client: Client; db: Db },
  schedules: readonly ScheduleDefinition[],
): Promise<{ name: string; scheduleId: string; outcome: UpsertOutcome }[]> => {
  const outcomes = [];
  for (const d of schedules) {
    const outcome = await upsertSchedule(client, d);
    if (outcome !== 'unchanged')
      await appendAudit(db, {
        actor: 'system',
        action: `schedule.${outcome}`,
        targetType: 'schedule',
        targetId: d.name,
        details: { scheduleId: d.scheduleId, spec: specText(d.spec), paused: d.paused, definition: definitionHash(d) },
        idempotencyKey: `schedule:${d.name}:${outcome}:${randomUUID()}`,
      });
    outcomes.push({ name: d.name, scheduleId: d.scheduleId, outcome });
  }
  return outcomes;
};

export interface ScheduleRun {
  /** The `scheduledRun` workflow (`schedule-{name}-{time}`); its result names the process's own workflow. */
  workflowId: string;
  scheduledAt: string;
  startedAt: string;
  status: string;
  closedAt: string | null;
  /** The run's result when it completed: the process's workflow ID and its result (IDs, counts, verdicts). */
  result: unknown;
  /** The failure's type when it failed (`InvalidInput`, …); messages stay in Temporal. */
  failureType: string | null;
}

export interface ScheduleView {
  id: string;
  scheduleId: string;
  workflowType: string;
  /** False when Temporal has no such schedule (schedules disabled, or the worker has not started yet). */
  created: boolean;
  spec: { cron: string } | { every: string } | null;
  catchupWindow: string | null;
  paused: boolean | null;
  note: string | null;
  nextRuns: string[];
  running: string[];
  lastRun: ScheduleRun | null;
  actions: { taken: number; skippedOverlap: number; missedCatchupWindow: number } | null;
}

const failureTypeOf = (err: unknown): string | null => {
  let type: string | null = null;
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause)
    if (e instanceof ApplicationFailure && e.type) type = e.type;
  return type ?? (err instanceof Error ? err.name : null);
};

const lastRunOf = async (client: Client, described: ScheduleDescription): Promise<ScheduleRun | null> => {
  const recent = described.info.recentActions.at(-1);
  if (!recent) return null;
  const handle = client.workflow.getHandle(recent.action.workflow.workflowId);
  const run = await handle.describe();
  let result: unknown = null;
  let failureType: string | null = null;
  if (run.status.name === 'COMPLETED') result = await handle.result();
  else if (run.status.name !== 'RUNNING')
    failureType = await handle.result().then(
      () => null,
      (err: unknown) => failureTypeOf(err instanceof WorkflowFailedError ? err.cause : err),
    );
  return {
    workflowId: run.workflowId,
    scheduledAt: recent.scheduledAt.toISOString(),
    startedAt: recent.takenAt.toISOString(),
    status: run.status.name,
    closedAt: run.closeTime?.toISOString() ?? null,
    result,
    failureType,
  };
};

/** What the API shows of a declared schedule: its spec and state in Temporal, next runs, the last run's outcome. */
export const viewSchedule = async (client: Client, d: ScheduleDefinition): Promise<ScheduleView> => {
  const described = await describeIfAny(client.schedule.getHandle(d.scheduleId));
  const base = { id: d.name, scheduleId: d.scheduleId, workflowType: d.workflowType };
  if (!described)
    return {
      ...base,
      created: false,
      spec: null,
      catchupWindow: null,
      paused: null,
      note: null,
      nextRuns: [],
      running: [],
      lastRun: null,
      actions: null,
    };
  const interval = described.spec.intervals?.[0]?.every;
  return {
    ...base,
    created: true,
    spec: readMemo(described).spec ?? (interval ? { every: isoDuration(interval) } : null),
    catchupWindow: isoDuration(described.policies.catchupWindow),
    paused: described.state.paused,
    note: described.state.note ?? null,
    nextRuns: described.info.nextActionTimes.slice(0, 5).map((t) => t.toISOString()),
    running: described.info.runningActions.map((a) => a.workflow.workflowId),
    lastRun: await lastRunOf(client, described),
    actions: {
      taken: described.info.numActionsTaken,
      skippedOverlap: described.info.numActionsSkippedOverlap,
      missedCatchupWindow: described.info.numActionsMissedCatchupWindow,
    },
  };
};

const notCreated = (d: ScheduleDefinition) =>
  DomainError.notFound(
    `schedule ${d.name} (Temporal schedule ${d.scheduleId}; schedules are upserted at worker start)`,
  );

/**
 * An operator's edit: a new cron or interval, paused, note. The declaration's hashes are kept, so the edit stands
 * until the code or the schedules file changes that schedule. Temporal refusing the spec is a DomainError 'invalid'.
 */
export const patchSchedule = async (client: Client, d: ScheduleDefinition, patch: SchedulePatch): Promise<void> => {
  const spec = specOf(patch);
  try {
    await client.schedule.getHandle(d.scheduleId).update((previous) => ({
      spec: spec ? temporalSpec(spec) : previous.spec,
      action: { ...previous.action, memo: { ...readMemo(previous), ...(spec ? { spec: specText(spec) } : {}) } },
      policies: previous.policies,
      state: { paused: patch.paused ?? previous.state.paused, note: patch.note ?? previous.state.note },
    }));
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw notCreated(d);
    // The SDK turns the server's "Invalid schedule spec" into a TypeError carrying the reason.
    if (err instanceof TypeError && spec) throw new DomainError('invalid', 'schedule-spec-invalid', err.message);
    throw err;
  }
};

/** Runs the schedule's action now; refused while a run is in progress (the schedule never overlaps itself). */
export const triggerSchedule = async (client: Client, d: ScheduleDefinition): Promise<void> => {
  const handle = client.schedule.getHandle(d.scheduleId);
  const described = await describeIfAny(handle);
  if (!described) throw notCreated(d);
  const running = described.info.runningActions[0];
  if (running)
    throw DomainError.conflict('schedule-running', `schedule ${d.name} is running (${running.workflow.workflowId})`);
  // SKIP as the schedule's own policy, so a trigger racing a scheduled run cannot overlap it either.
  await handle.trigger(ScheduleOverlapPolicy.SKIP);
};
