import { readFileSync } from 'node:fs';
import {
  SCHEDULES,
  ScheduleOverrides,
  resolveSchedules,
  type ScheduleDeclaration,
  type ScheduleDefinition,
  type SchedulePolicy,
} from '../domain/schedules';
import { ConfigError, type Config } from './config';

/** The configured values the schedules' inputs are made from. */
export const schedulePolicy = (config: Config): SchedulePolicy => ({
  retention: {
    keepDaily: config.CUSTODIAN_BACKUP_KEEP_DAILY,
    keepWeekly: config.CUSTODIAN_BACKUP_KEEP_WEEKLY,
    keepMonthly: config.CUSTODIAN_BACKUP_KEEP_MONTHLY,
  },
  freshnessThresholdMs: config.CUSTODIAN_BACKUP_FRESHNESS_THRESHOLD,
  keyringRetentionMs: config.CUSTODIAN_KEYRING_BACKUP_RETENTION,
});

/** Reads and checks `CUSTODIAN_SCHEDULES_FILE`; a mistake stops start-up with one line naming where it is. */
export const loadScheduleOverrides = (file: string | undefined): ScheduleOverrides => {
  if (!file) return {};
  const name = 'CUSTODIAN_SCHEDULES_FILE';
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${name}: not readable JSON (${(err as Error).message.split('\n')[0]})`);
  }
  const parsed = ScheduleOverrides.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`${name}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  return parsed.data;
};

/**
 * The recurring reviews this deployment runs: the code's declarations with the operator's file applied, on this
 * process's task queue. Tests pass a `scheduleIdPrefix` so their schedules never meet production's IDs.
 */
export const loadSchedules = (
  config: Config,
  o: { scheduleIdPrefix?: string; declarations?: readonly ScheduleDeclaration[] } = {},
): ScheduleDefinition[] =>
  resolveSchedules(o.declarations ?? SCHEDULES, {
    overrides: loadScheduleOverrides(config.CUSTODIAN_SCHEDULES_FILE),
    policy: schedulePolicy(config),
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    scheduleIdPrefix: o.scheduleIdPrefix,
  });
