import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAudit } from '../../activities/audit';
import { upsertSchedules, type ScheduleView } from '../../activities/schedules';
import { bearer, readJson, seedPrincipal } from '../helpers/api';
import { createTestApp, createTestWorker, type TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';

interface ScheduleRun {
  workflowId: string;
  status: string;
  result: { schedule: string; workflowType: string; workflowId: string; result: Record<string, unknown> } | null;
}
type Schedule = Omit<ScheduleView, 'lastRun'> & { lastRun: ScheduleRun | null };

/** The schedules no other test triggers through the API (backup, freshness, retention, quality, keys, obligations are). */
const THESE = ['restore-drill', 'retention-sweep', 'access-review'];
let api: TestApp;
let worker: Worker;
let running: Promise<void>;
let adminKey: string;

beforeAll(async () => {
  api = await createTestApp();
  worker = await createTestWorker(api);
  running = worker.run();
  ({ key: adminKey } = await seedPrincipal(api.database.db, 'admin'));
  await upsertSchedules(
    { client: api.temporal, db: api.database.db },
    api.schedules.filter((s) => THESE.includes(s.name)),
  );
}, 120_000);

afterAll(async () => {
  for (const s of api?.schedules ?? [])
    await api.temporal.schedule
      .getHandle(s.scheduleId)
      .delete()
      .catch(() => {});
  worker?.shutdown();
  await running;
  await api?.close();
});

const lastRun = async (id: string) => {
  const res = await api.app.request('/v1/schedules', { headers: bearer(adminKey) });
  return (await readJson<{ schedules: Schedule[] }>(res)).schedules.find((s) => s.id === id)!.lastRun;
};
const triggerAndWait = async (id: string) => {
  const res = await api.app.request(`/v1/schedules/${id}/trigger`, { method: 'POST', headers: bearer(adminKey) });
  expect(res.status).toBe(202);
  return waitFor(
    async () => {
      const run = await lastRun(id);
      return run?.status === 'COMPLETED' ? run : undefined;
    },
    `the triggered ${id}`,
    120_000,
  );
};
/** The process's own audit entry, written by the run the schedule started. */
const auditedBy = async (action: string, workflowId: string) =>
  (await listAudit(api.database.db, { action, limit: 100 })).filter((e) => e.workflowId === workflowId);

describe('schedules triggered through the API run their process and leave its evidence', () => {
  it.each([
    ['restore-drill', 'restoreDrill', 'backup.restore-drill-picked', 'restore-drill-'],
    ['retention-sweep', 'retentionSweep', 'retention-sweep.planned', 'retention-sweep-'],
    ['access-review', 'accessReview', 'access-review.closed', 'access-review-'],
  ])('%s runs as %s and audits %s', { timeout: 150_000 }, async (id, workflowType, action, prefix) => {
    const run = await triggerAndWait(id);
    expect(run.result).toMatchObject({ schedule: id, workflowType });
    expect(run.result!.workflowId.startsWith(prefix)).toBe(true);
    expect(await auditedBy(action, run.result!.workflowId)).toHaveLength(1);
  });
});
