import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScheduleNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAudit } from '../../activities/audit';
import { patchSchedule, upsertSchedules, viewSchedule } from '../../activities/schedules';
import { SCHEDULES, type ScheduleDefinition } from '../../domain/schedules';
import { ConfigError, loadConfig, type Config } from '../../runtime/config';
import { loadSchedules } from '../../runtime/schedules';
import { createTestServices, type TestServices } from '../helpers/services';

let s: TestServices;
const dir = mkdtempSync(join(tmpdir(), 'custodian-schedules-'));
const prefix = `test-upsert-${randomUUID().slice(0, 8)}-`;
const created = new Set<string>();

/** The declared schedules as a worker with this schedules file (and environment) would upsert them. */
const declared = (file?: object, env: Partial<Config> = {}): ScheduleDefinition[] => {
  let path: string | undefined;
  if (file) {
    path = join(dir, `${randomUUID()}.json`);
    writeFileSync(path, JSON.stringify(file));
  }
  const config = { ...s.config, ...env, CUSTODIAN_SCHEDULES_FILE: path };
  const schedules = loadSchedules(config, { scheduleIdPrefix: prefix });
  for (const d of schedules) created.add(d.scheduleId);
  return schedules;
};

const upsert = (schedules: ScheduleDefinition[]) =>
  upsertSchedules({ client: s.temporal, db: s.database.db }, schedules);
const describeSchedule = (d: ScheduleDefinition) => s.temporal.schedule.getHandle(d.scheduleId).describe();
const byName = (schedules: ScheduleDefinition[], name: string) => schedules.find((d) => d.name === name)!;

beforeAll(async () => {
  s = await createTestServices();
});

afterAll(async () => {
  for (const id of created)
    await s.temporal.schedule
      .getHandle(id)
      .delete()
      .catch(() => {});
  await s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('schedule registry', () => {
  it('declares each recurring review once, with a stable schedule ID', () => {
    const names = SCHEDULES.map((d) => d.name);
    expect(new Set(names).size).toBe(names.length);
    const production = loadSchedules(loadConfig({}));
    expect(production.map((d) => d.scheduleId)).toEqual(names.map((n) => `schedule-${n}`));
    expect(byName(production, 'backup-freshness')).toMatchObject({
      spec: { everyMs: 3_600_000 },
      launch: { schedule: 'backup-freshness', input: { thresholdMs: 26 * 3_600_000 } },
    });
    expect(byName(production, 'backup-retention').launch.input).toMatchObject({
      keepDaily: 7,
      keepWeekly: 4,
      keepMonthly: 12,
    });
  });

  it('takes its inputs from the configuration and overrides from the operator file', () => {
    const schedules = declared(
      { 'backup-retention': { cron: '30 3 * * *', paused: true, note: 'moved after the batch window' } },
      { CUSTODIAN_BACKUP_KEEP_DAILY: 3, CUSTODIAN_BACKUP_FRESHNESS_THRESHOLD: 90_000 },
    );
    expect(byName(schedules, 'backup-retention')).toMatchObject({
      spec: { cron: '30 3 * * *' },
      paused: true,
      note: 'moved after the batch window',
      launch: { input: { keepDaily: 3 } },
    });
    expect(byName(schedules, 'backup-freshness').launch.input).toMatchObject({ thresholdMs: 90_000 });
  });

  it('refuses a schedules file naming an unknown schedule, giving both cron and every, or a bad cron', () => {
    const refusal = (file: object) => {
      try {
        declared(file);
        return undefined;
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
    };
    expect(refusal({ 'backup-nightly': { cron: '0 1 * * *' } })).toMatch(
      /^CUSTODIAN_SCHEDULES_FILE: backup-nightly: no such schedule/,
    );
    expect(refusal({ 'backup-retention': { cron: '0 1 * * *', every: 'PT1H' } })).toMatch(
      /^CUSTODIAN_SCHEDULES_FILE: backup-retention\.every: give cron or every/,
    );
    expect(refusal({ 'backup-retention': { cron: 'daily' } })).toMatch(/backup-retention\.cron: must be a cron/);
    expect(refusal({ 'backup-retention': { colour: 'red' } })).toMatch(/backup-retention/);
    expect(() => loadConfig({ CUSTODIAN_SCHEDULES_FILE: join(dir, 'absent.json') })).toThrow(
      /^CUSTODIAN_SCHEDULES_FILE: no such file/,
    );
  });
});

describe('upserting the schedules into Temporal', () => {
  it('creates them with overlap skip, the catch-up window and the scheduledRun action; a second upsert changes nothing', async () => {
    const schedules = declared();
    const first = await upsert(schedules);
    expect(first.map((o) => o.outcome)).toEqual(schedules.map(() => 'created'));
    const retention = await describeSchedule(byName(schedules, 'backup-retention'));
    expect(retention.policies).toMatchObject({ overlap: 'SKIP', catchupWindow: 86_400_000 });
    expect(retention.action).toMatchObject({
      workflowType: 'scheduledRun',
      workflowId: `${prefix}schedule-backup-retention`,
      taskQueue: s.config.TEMPORAL_TASK_QUEUE,
      args: [{ schedule: 'backup-retention', input: { keepDaily: 7, keepWeekly: 4, keepMonthly: 12 } }],
    });
    expect(retention.state.paused).toBe(false);
    expect(retention.info.nextActionTimes[0]!.getUTCHours()).toBe(4);
    const freshness = await describeSchedule(byName(schedules, 'backup-freshness'));
    expect(freshness.spec.intervals).toMatchObject([{ every: 3_600_000 }]);
    expect(freshness.policies.catchupWindow).toBe(3_600_000);

    const created = await listAudit(s.database.db, { action: 'schedule.created', limit: 50 });
    expect(created.map((e) => e.targetId).sort()).toEqual(schedules.map((d) => d.name).sort());
    expect(created.find((e) => e.targetId === 'backup-retention')).toMatchObject({
      actor: 'system',
      details: { scheduleId: `${prefix}schedule-backup-retention`, spec: { cron: '0 4 * * *' }, paused: false },
    });

    const again = await upsert(declared());
    expect(again.map((o) => o.outcome)).toEqual(schedules.map(() => 'unchanged'));
    expect(await listAudit(s.database.db, { action: 'schedule.updated', limit: 50 })).toEqual([]);
    const after = await describeSchedule(byName(schedules, 'backup-retention'));
    expect(after.info.lastUpdatedAt).toEqual(retention.info.lastUpdatedAt);
  });

  it('keeps an operator’s API edit across restarts until the declaration itself changes', async () => {
    const schedules = declared();
    const retention = byName(schedules, 'backup-retention');
    await patchSchedule(s.temporal, retention, { cron: '15 6 * * *', paused: true, note: 'paused for a migration' });
    expect(await upsert(declared())).toContainEqual(
      expect.objectContaining({ name: 'backup-retention', outcome: 'unchanged' }),
    );
    let view = await viewSchedule(s.temporal, retention);
    expect(view).toMatchObject({ spec: { cron: '15 6 * * *' }, paused: true, note: 'paused for a migration' });
    expect(new Date(view.nextRuns[0]!).getUTCHours()).toBe(6);

    // The file changes the spec only: the spec follows, the operator's pause stands.
    const moved = declared({ 'backup-retention': { every: 'PT2H' } });
    expect(await upsert(moved)).toContainEqual(
      expect.objectContaining({ name: 'backup-retention', outcome: 'updated' }),
    );
    view = await viewSchedule(s.temporal, retention);
    expect(view).toMatchObject({ spec: { every: 'PT2H' }, paused: true, note: 'paused for a migration' });
    const [updated] = await listAudit(s.database.db, { action: 'schedule.updated', limit: 50 });
    expect(updated).toMatchObject({
      actor: 'system',
      targetId: 'backup-retention',
      details: { spec: { every: 'PT2H' } },
    });
    expect((await describeSchedule(retention)).spec.intervals).toMatchObject([{ every: 7_200_000 }]);

    // The file changes the state: it is applied.
    const resumed = declared({ 'backup-retention': { every: 'PT2H', paused: false, note: 'resumed by the file' } });
    await upsert(resumed);
    view = await viewSchedule(s.temporal, retention);
    expect(view).toMatchObject({ paused: false, note: 'resumed by the file', spec: { every: 'PT2H' } });
  });

  it('follows the configuration into the schedule input (a new threshold updates the action)', async () => {
    const before = byName(declared(), 'backup-freshness');
    await upsert([before]);
    const changed = byName(
      declared(undefined, { CUSTODIAN_BACKUP_FRESHNESS_THRESHOLD: 7_200_000 }),
      'backup-freshness',
    );
    expect(await upsert([changed])).toEqual([
      { name: 'backup-freshness', scheduleId: changed.scheduleId, outcome: 'updated' },
    ]);
    expect((await describeSchedule(changed)).action.args).toEqual([
      { schedule: 'backup-freshness', input: { requestedBy: 'schedule:backup-freshness', thresholdMs: 7_200_000 } },
    ]);
  });

  it('reports a schedule Temporal does not have as not created', async () => {
    const [missing] = loadSchedules(s.config, { scheduleIdPrefix: `test-missing-${randomUUID().slice(0, 8)}-` });
    await expect(s.temporal.schedule.getHandle(missing!.scheduleId).describe()).rejects.toBeInstanceOf(
      ScheduleNotFoundError,
    );
    expect(await viewSchedule(s.temporal, missing!)).toMatchObject({ created: false, spec: null, lastRun: null });
  });
});
