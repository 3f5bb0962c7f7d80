import { z } from 'zod';
import { ACCESS_REVIEW_DEFAULTS } from './access-review';
import type { RetentionPolicy } from './backup-retention';
import { Duration } from './consent';
import { isUnstorableText, UNSTORABLE_TEXT } from './text';
import {
  backupFreshnessWorkflowId,
  backupWorkflowId,
  backupRetentionWorkflowId,
  restoreDrillWorkflowId,
  scheduleIdOf,
  qualityCheckWorkflowId,
  keyRotationWorkflowId,
  accessReviewWorkflowId,
  obligationsCheckWorkflowId,
  retentionSweepWorkflowId,
} from './ids';

/**
 * The recurring reviews, declared in one place. Each is a Temporal Schedule (`schedule-{name}`) whose action starts
 * `scheduledRun`, which gives the run fresh IDs and runs the process as a child under its usual workflow ID
 * (`backup-{id}`, `backup-retention-{id}`, …) and waits for it, so the schedule's overlap policy sees the whole run.
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** The configured values schedule inputs are made from (runtime/schedules.ts reads them from the environment). */
export interface SchedulePolicy {
  retention: RetentionPolicy;
  /** The freshness alarm fires when the newest verified backup is older than this. */
  freshnessThresholdMs: number;
  /** How long a keyring backup is kept. */
  keyringRetentionMs: number;
}

/** When a schedule fires: a five-field cron expression (UTC) or a fixed interval from the epoch. */
export type ScheduleSpec = { cron: string } | { everyMs: number };

export interface ScheduleDeclaration {
  /** The registry's name and the API's `{id}`; the Temporal schedule is `schedule-{name}`. */
  name: string;
  workflowType: string;
  /** The process's workflow ID from its business ID (domain/ids.ts). */
  workflowId: (id: string) => string;
  /** Input fields that get a fresh UUID per run; the first is the business ID in the workflow ID. */
  ids: readonly [string, ...string[]];
  spec: ScheduleSpec;
  /** How late a missed run may still start after an outage (Temporal's catch-up window). */
  catchupWindowMs: number;
  note: string;
  /** The process's input besides the fresh IDs: IDs, counts and durations only. */
  input: (p: SchedulePolicy) => Record<string, unknown>;
}

/** One line per recurring review; a process whose workflow does not exist yet is not declared. */
// prettier-ignore
export const SCHEDULES: readonly ScheduleDeclaration[] = [
  { name: 'backup', workflowType: 'backup', workflowId: backupWorkflowId, ids: ['backupId', 'keyringBackupId'], spec: { cron: '0 2 * * *' }, catchupWindowMs: DAY, note: 'Daily encrypted backup, restore-tested when written', input: (p) => ({ requestedBy: 'schedule:backup', keyringRetentionMs: p.keyringRetentionMs }) },
  { name: 'restore-drill', workflowType: 'restoreDrill', workflowId: restoreDrillWorkflowId, ids: ['drillId'], spec: { cron: '0 5 * * 0' }, catchupWindowMs: DAY, note: 'Weekly restore test of a random older verified backup', input: () => ({ requestedBy: 'schedule:restore-drill' }) },
  { name: 'backup-freshness', workflowType: 'backupFreshness', workflowId: backupFreshnessWorkflowId, ids: ['checkId'], spec: { everyMs: HOUR }, catchupWindowMs: HOUR, note: 'Hourly: alert when the newest verified backup is too old', input: (p) => ({ requestedBy: 'schedule:backup-freshness', thresholdMs: p.freshnessThresholdMs }) },
  { name: 'backup-retention', workflowType: 'backupRetention', workflowId: backupRetentionWorkflowId, ids: ['retentionId'], spec: { cron: '0 4 * * *' }, catchupWindowMs: DAY, note: 'Daily GFS retention of data backups and expiry of keyring backups', input: (p) => ({ requestedBy: 'schedule:backup-retention', ...p.retention }) },
  { name: 'quality-check', workflowType: 'qualityCheck', workflowId: qualityCheckWorkflowId, ids: ['checkId'], spec: { cron: '0 3 * * 1' }, catchupWindowMs: DAY, note: 'Weekly data-quality check: completeness, validity, uniqueness, timeliness, consistency', input: () => ({ requestedBy: 'schedule:quality-check' }) },
  { name: 'key-rotation', workflowType: 'keyRotation', workflowId: keyRotationWorkflowId, ids: ['rotationId'], spec: { everyMs: 90 * DAY }, catchupWindowMs: 7 * DAY, note: 'Every 90 days: a new KEK version, every data key re-wrapped and verified, the old version retired', input: () => ({ requestedBy: 'schedule:key-rotation' }) },
  { name: 'access-review', workflowType: 'accessReview', workflowId: accessReviewWorkflowId, ids: ['reviewId'], spec: { cron: '0 3 1 1,4,7,10 *' }, catchupWindowMs: 7 * DAY, note: 'Quarterly: every live access grant certified by its reviewer; grants not kept by the deadline are revoked', input: () => ({ requestedBy: 'schedule:access-review', ...ACCESS_REVIEW_DEFAULTS }) },
  { name: 'obligations-check', workflowType: 'obligationsCheck', workflowId: obligationsCheckWorkflowId, ids: ['checkId'], spec: { cron: '0 6 * * *' }, catchupWindowMs: DAY, note: 'Daily: remind owners of compliance obligations coming due, and tell them of overdue ones', input: () => ({ requestedBy: 'schedule:obligations-check' }) },
  { name: 'retention-sweep', workflowType: 'retentionSweep', workflowId: retentionSweepWorkflowId, ids: ['sweepId', 'destructionId'], spec: { cron: '0 1 * * *' }, catchupWindowMs: DAY, note: 'Daily: one destruction request for subjects and field values past their retention, not under legal hold', input: () => ({ requestedBy: 'schedule:retention-sweep' }) },
];

export const scheduleDeclaration = (name: string): ScheduleDeclaration | undefined =>
  SCHEDULES.find((s) => s.name === name);

/** `scheduledRun`'s input, fixed in the schedule's action: the declaration's name and the process's input. */
export interface ScheduledRunInput {
  schedule: string;
  input: Record<string, unknown>;
}

export interface ScheduledRunResult {
  schedule: string;
  workflowType: string;
  /** The process's workflow, e.g. `backup-retention-{id}`. */
  workflowId: string;
  result: unknown;
}

/** A declaration with the operator's overrides applied and its input made: what is upserted into Temporal. */
export interface ScheduleDefinition {
  name: string;
  scheduleId: string;
  workflowType: string;
  taskQueue: string;
  spec: ScheduleSpec;
  catchupWindowMs: number;
  paused: boolean;
  note: string;
  launch: ScheduledRunInput;
}

/** Temporal compiles cron into calendars, so only the shape is checked here; the server refuses what it cannot read. */
export const Cron = z
  .string()
  .trim()
  .max(200)
  .regex(/^[0-9A-Za-z*?,/#-]+(\s+[0-9A-Za-z*?,/#-]+){4}$/, {
    error: 'must be a cron expression of five fields: minute hour day-of-month month day-of-week (UTC)',
  });

export const ScheduleNote = z
  .string()
  .max(500)
  .regex(/^[^\r\n]*$/, { error: 'must be one line' })
  // Named even when the body fails elsewhere too (the route's hook checks storability only after zod succeeds).
  .refine((text) => !isUnstorableText(text), UNSTORABLE_TEXT);

const bothSpecs = (o: { cron?: unknown; every?: unknown }) => !(o.cron !== undefined && o.every !== undefined);
const oneSpecOnly = { error: 'give cron or every, not both', path: ['every'] };

/** An operator's override of one declared schedule (`CUSTODIAN_SCHEDULES_FILE`). */
export const ScheduleOverride = z
  .object({
    cron: Cron.optional(),
    every: Duration.optional(),
    paused: z.boolean().optional(),
    note: ScheduleNote.optional(),
    catchupWindow: Duration.optional(),
  })
  .strict()
  .refine(bothSpecs, oneSpecOnly);
export type ScheduleOverride = z.infer<typeof ScheduleOverride>;

/** The operator's schedules file: overrides by declared name; an unknown name is refused, not ignored. */
export const ScheduleOverrides = z.record(z.string(), ScheduleOverride).superRefine((file, ctx) => {
  for (const name of Object.keys(file))
    if (!scheduleDeclaration(name))
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: `no such schedule (declared: ${SCHEDULES.map((s) => s.name).join(', ')})`,
      });
});
export type ScheduleOverrides = z.infer<typeof ScheduleOverrides>;

/** `PATCH /v1/schedules/{id}`: the fields, and the rules across them (the API wraps the fields for its document). */
export const SCHEDULE_PATCH_FIELDS = {
  cron: Cron.optional(),
  every: Duration.optional(),
  paused: z.boolean().optional(),
  note: ScheduleNote.optional(),
};
export const refineSchedulePatch = <T extends z.ZodType<{ cron?: string; every?: number }>>(schema: T) =>
  schema
    .refine(bothSpecs, oneSpecOnly)
    .refine((p) => Object.keys(p).length > 0, { error: 'give at least one of cron, every, paused, note' });
export const SchedulePatch = refineSchedulePatch(z.object(SCHEDULE_PATCH_FIELDS).strict());
export type SchedulePatch = z.infer<typeof SchedulePatch>;

export const specOf = (o: { cron?: string; every?: number }): ScheduleSpec | undefined =>
  o.cron !== undefined ? { cron: o.cron } : o.every !== undefined ? { everyMs: o.every } : undefined;

/** Milliseconds as an ISO 8601 duration in days, hours, minutes and seconds (`P1D`, `PT1H30M`, `PT0.5S`). */
export const isoDuration = (ms: number): string => {
  const days = Math.floor(ms / DAY);
  const hours = Math.floor((ms % DAY) / HOUR);
  const minutes = Math.floor((ms % HOUR) / MINUTE);
  const seconds = (ms % MINUTE) / 1000;
  const time = `${hours ? `${hours}H` : ''}${minutes ? `${minutes}M` : ''}${seconds ? `${seconds}S` : ''}`;
  const text = `P${days ? `${days}D` : ''}${time ? `T${time}` : ''}`;
  return text === 'P' ? 'PT0S' : text;
};

/** How a spec reads in the API and the operator file: `{ cron }` or `{ every: 'PT1H' }`. */
export const specText = (spec: ScheduleSpec): { cron: string } | { every: string } =>
  'cron' in spec ? { cron: spec.cron } : { every: isoDuration(spec.everyMs) };

/** Declarations → definitions: overrides applied, inputs made from the policy, schedule IDs given a prefix (tests). */
export const resolveSchedules = (
  declarations: readonly ScheduleDeclaration[],
  o: { overrides?: ScheduleOverrides; policy: SchedulePolicy; taskQueue: string; scheduleIdPrefix?: string },
): ScheduleDefinition[] =>
  declarations.map((d) => {
    const override = o.overrides?.[d.name] ?? {};
    return {
      name: d.name,
      scheduleId: `${o.scheduleIdPrefix ?? ''}${scheduleIdOf(d.name)}`,
      workflowType: d.workflowType,
      taskQueue: o.taskQueue,
      spec: specOf(override) ?? d.spec,
      catchupWindowMs: override.catchupWindow ?? d.catchupWindowMs,
      paused: override.paused ?? false,
      note: override.note ?? d.note,
      launch: { schedule: d.name, input: d.input(o.policy) },
    };
  });
