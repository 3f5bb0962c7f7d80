import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAudit } from '../../activities/audit';
import { upsertSchedules, type ScheduleView } from '../../activities/schedules';
import { alerts, backups } from '../../db/schema';
import { SCHEDULES } from '../../domain/schedules';
import { bearer, readJson, seedPrincipal, type Problem } from '../helpers/api';
import { startTestApp } from '../helpers/running-app';
import type { TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';

interface ScheduleRun {
  workflowId: string;
  status: string;
  result: { schedule: string; workflowType: string; workflowId: string; result: Record<string, unknown> } | null;
  failureType: string | null;
}
/** The route's view, with the run's result as the launcher returns it. */
type Schedule = Omit<ScheduleView, 'lastRun'> & { lastRun: ScheduleRun | null };

let api: TestApp;
let stop: () => Promise<void>;
let adminKey: string;
let adminId: string;
let ownerKey: string;
const dir = mkdtempSync(join(tmpdir(), 'custodian-schedules-api-'));

beforeAll(async () => {
  ({ api, stop } = await startTestApp({ config: { BACKUP_DIR: dir }, deleteSchedules: true }));
  ({ key: adminKey, userId: adminId } = await seedPrincipal(api.database.db, 'admin'));
  ({ key: ownerKey } = await seedPrincipal(api.database.db, 'owner'));
}, 120_000);

afterAll(async () => {
  await stop?.();
  rmSync(dir, { recursive: true, force: true });
});

const list = async (key = adminKey) => {
  const res = await api.app.request('/v1/schedules', { headers: bearer(key) });
  expect(res.status).toBe(200);
  return (await readJson<{ schedules: Schedule[] }>(res)).schedules;
};
const one = async (id: string) => (await list()).find((s) => s.id === id)!;
const patch = (id: string, body: unknown) =>
  api.app.request(`/v1/schedules/${id}`, { method: 'PATCH', headers: bearer(adminKey), body: JSON.stringify(body) });
const trigger = (id: string) =>
  api.app.request(`/v1/schedules/${id}/trigger`, { method: 'POST', headers: bearer(adminKey) });

describe('GET /v1/schedules', () => {
  it('lists every declared schedule, not created until a worker upserts them', async () => {
    const before = await list();
    expect(before.map((s) => s.id)).toEqual(SCHEDULES.map((d) => d.name));
    expect(before.map((s) => s.id).slice(0, 4)).toEqual([
      'backup',
      'restore-drill',
      'backup-freshness',
      'backup-retention',
    ]);
    expect(before.every((s) => !s.created && s.spec === null)).toBe(true);

    await upsertSchedules({ client: api.temporal, db: api.database.db }, api.schedules);
    const after = await list();
    expect(after.every((s) => s.created && s.paused === false && s.lastRun === null)).toBe(true);
    expect(after.find((s) => s.id === 'backup')).toMatchObject({
      workflowType: 'backup',
      spec: { cron: '0 2 * * *' },
      catchupWindow: 'P1D',
    });
    const freshness = after.find((s) => s.id === 'backup-freshness')!;
    expect(freshness).toMatchObject({ spec: { every: 'PT1H' }, catchupWindow: 'PT1H' });
    expect(freshness.scheduleId).toMatch(/^test-[0-9a-f]{8}-schedule-backup-freshness$/);
    expect(Date.parse(freshness.nextRuns[0]!) % 3_600_000).toBe(0);
  });

  it('is for admins only', async () => {
    const res = await api.app.request('/v1/schedules', { headers: bearer(ownerKey) });
    expect(res.status).toBe(403);
  });
});

describe('PATCH /v1/schedules/{id}', () => {
  it('changes the cron, and so the next run; audited with the user and the new spec', async () => {
    const before = await one('backup-retention');
    const res = await patch('backup-retention', { cron: '45 1 * * *', note: 'after the nightly batch' });
    expect(res.status).toBe(200);
    const after = await readJson<Schedule>(res);
    expect(after).toMatchObject({ spec: { cron: '45 1 * * *' }, note: 'after the nightly batch', paused: false });
    const next = new Date(after.nextRuns[0]!);
    expect([next.getUTCHours(), next.getUTCMinutes()]).toEqual([1, 45]);
    expect(after.nextRuns[0]).not.toBe(before.nextRuns[0]);

    const [entry] = await listAudit(api.database.db, { action: 'schedule.updated', limit: 10 });
    expect(entry).toMatchObject({
      actor: `user:${adminId}`,
      targetType: 'schedule',
      targetId: 'backup-retention',
      details: { cron: '45 1 * * *', noteChanged: true },
    });
    expect(JSON.stringify(entry!.details)).not.toContain('nightly batch');
  });

  it('refuses bad input naming the field, and an unknown schedule', async () => {
    const field = async (body: unknown) => {
      const res = await patch('backup-retention', body);
      expect(res.status).toBe(400);
      return (await readJson<Problem>(res)).fields?.map((f) => f.path);
    };
    expect(await field({ cron: '0 1 * * *', every: 'PT1H' })).toEqual(['every']);
    expect(await field({ cron: 'nightly' })).toEqual(['cron']);
    expect(await field({ every: 'soon' })).toEqual(['every']);
    expect(await field({ note: 'two\nlines' })).toEqual(['note']);
    expect(await field({ paused: 'yes' })).toEqual(['paused']);
    expect(await field({ colour: 'red' })).toBeDefined();
    expect((await patch('backup-retention', {})).status).toBe(400);
    // Shaped like cron, refused by Temporal.
    expect(await field({ cron: '99 * * * *' })).toEqual(['cron']);
    expect((await one('backup-retention')).spec).toEqual({ cron: '45 1 * * *' });

    const unknown = await patch('backup-nightly', { paused: true });
    expect(unknown.status).toBe(404);
  });
});

describe('POST /v1/schedules/{id}/trigger', () => {
  it('runs the review now: the process runs under its own workflow ID and its result is the last run', async () => {
    const res = await trigger('backup-freshness');
    expect(res.status).toBe(202);
    const lastRun = await waitFor(async () => {
      const run = (await one('backup-freshness')).lastRun;
      return run?.status === 'COMPLETED' ? run : undefined;
    }, 'the triggered freshness check');
    expect(lastRun.workflowId.startsWith(`${(await one('backup-freshness')).scheduleId}-`)).toBe(true);
    expect(lastRun.result).toMatchObject({
      schedule: 'backup-freshness',
      workflowType: 'backupFreshness',
      workflowId: expect.stringMatching(/^backup-freshness-[0-9a-f-]{36}$/),
      result: { fresh: false, newestVerifiedBackupId: null, thresholdMs: 26 * 3_600_000 },
    });
    const checkId = lastRun.result!.result.checkId as string;
    expect(lastRun.result!.workflowId).toBe(`backup-freshness-${checkId}`);
    const raised = await api.database.db
      .select()
      .from(alerts)
      .where(and(eq(alerts.kind, 'backup-stale'), eq(alerts.targetId, checkId)));
    expect(raised).toHaveLength(1);
    const [entry] = await listAudit(api.database.db, { action: 'schedule.triggered', limit: 10 });
    expect(entry).toMatchObject({ actor: `user:${adminId}`, targetId: 'backup-freshness' });
  });

  it('runs a backup with fresh IDs under backup-{id}, restore-tested; a second trigger meanwhile is refused', async () => {
    // The backup's export reads `subjects`; this lock holds it there, so its run is still in progress when the
    // second trigger arrives (a small database is backed up faster than a GET and a POST take under load).
    const locker = await api.database.sql.reserve();
    try {
      await locker`begin`;
      await locker`lock table subjects in access exclusive mode`;
      expect((await trigger('backup')).status).toBe(202);
      await waitFor(async () => ((await one('backup')).running.length ? true : undefined), 'the backup running');
      const again = await trigger('backup');
      expect(again.status).toBe(409);
      expect((await readJson<Problem>(again)).code).toBe('schedule-running');
    } finally {
      await locker`rollback`;
      locker.release();
    }
    const lastRun = await waitFor(
      async () => {
        const run = (await one('backup')).lastRun;
        return run?.status === 'COMPLETED' ? run : undefined;
      },
      'the triggered backup',
      120_000,
    );
    const backupId = lastRun.result!.result.backupId as string;
    expect(lastRun.result).toMatchObject({
      schedule: 'backup',
      workflowType: 'backup',
      workflowId: `backup-${backupId}`,
      result: { status: 'verified', restoreTest: { status: 'pass' } },
    });
    const rows = await api.database.db.select().from(backups).where(eq(backups.requestedBy, 'schedule:backup'));
    expect(rows.map((r) => r.kind).sort()).toEqual(['data', 'keyring']);
    expect(rows.find((r) => r.kind === 'data')).toMatchObject({ id: backupId, status: 'verified' });
  });

  it('runs a triggered retention sweep to its evidence', async () => {
    expect((await trigger('backup-retention')).status).toBe(202);
    const lastRun = await waitFor(async () => {
      const run = (await one('backup-retention')).lastRun;
      return run?.status === 'COMPLETED' ? run : undefined;
    }, 'the triggered retention sweep');
    expect(lastRun.result).toMatchObject({
      workflowType: 'backupRetention',
      result: { policy: { keepDaily: 7, keepWeekly: 4, keepMonthly: 12 }, deleted: [], kept: 1 },
    });
    const planned = await listAudit(api.database.db, { action: 'backup.retention-planned', limit: 10 });
    expect(planned.map((e) => e.targetId)).toContain(lastRun.result!.workflowId);
  });

  it('a paused schedule does not run; resumed, it does', async () => {
    const paused = await patch('backup-freshness', { every: '1 second', paused: true });
    expect(await readJson<Schedule>(paused)).toMatchObject({ spec: { every: 'PT1S' }, paused: true });
    const taken = (await one('backup-freshness')).actions!.taken;
    // A negative needs a wait: three of its intervals pass without a run.
    await new Promise((r) => setTimeout(r, 3000));
    expect((await one('backup-freshness')).actions!.taken).toBe(taken);

    expect((await patch('backup-freshness', { paused: false })).status).toBe(200);
    await waitFor(
      async () => ((await one('backup-freshness')).actions!.taken > taken ? true : undefined),
      'a run after resuming',
    );
    expect((await patch('backup-freshness', { paused: true })).status).toBe(200);
  });

  it('refuses an unknown schedule', async () => {
    expect((await trigger('backup-nightly')).status).toBe(404);
  });
});
