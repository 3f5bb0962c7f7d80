import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAudit } from '../../activities/audit';
import { upsertSchedules, type ScheduleView } from '../../activities/schedules';
import { kekVersions, keyRotations, qualityReports, subjectKeys } from '../../db/schema';
import { bearer, readJson, seedPrincipal } from '../helpers/api';
import { insertSubjects } from '../helpers/campaign-subjects';
import { startTestApp } from '../helpers/running-app';
import type { TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';

interface ScheduleRun {
  workflowId: string;
  status: string;
  result: { schedule: string; workflowType: string; workflowId: string; result: Record<string, unknown> } | null;
}
type Schedule = Omit<ScheduleView, 'lastRun'> & { lastRun: ScheduleRun | null };

/** Schedules triggered here; backup, freshness, backup retention and obligations are in their own tests. */
const MINE = ['quality-check', 'key-rotation', 'restore-drill', 'retention-sweep', 'access-review'];
let api: TestApp;
let stop: () => Promise<void>;
let adminKey: string;

beforeAll(async () => {
  ({ api, stop } = await startTestApp({ deleteSchedules: true }));
  ({ key: adminKey } = await seedPrincipal(api.database.db, 'admin'));
  await upsertSchedules(
    { client: api.temporal, db: api.database.db },
    api.schedules.filter((s) => MINE.includes(s.name)),
  );
}, 120_000);

afterAll(() => stop?.());

const one = async (id: string) => {
  const res = await api.app.request('/v1/schedules', { headers: bearer(adminKey) });
  return (await readJson<{ schedules: Schedule[] }>(res)).schedules.find((s) => s.id === id)!;
};
const triggerAndWait = async (id: string) => {
  const res = await api.app.request(`/v1/schedules/${id}/trigger`, { method: 'POST', headers: bearer(adminKey) });
  expect(res.status).toBe(202);
  return waitFor(
    async () => {
      const run = (await one(id)).lastRun;
      return run?.status === 'COMPLETED' ? run : undefined;
    },
    `the triggered ${id}`,
    120_000,
  );
};

describe('the quality-check and key-rotation schedules', () => {
  it('are declared weekly and every 90 days', async () => {
    expect(await one('quality-check')).toMatchObject({ workflowType: 'qualityCheck', spec: { cron: '0 3 * * 1' } });
    expect(await one('key-rotation')).toMatchObject({ workflowType: 'keyRotation', spec: { every: 'P90D' } });
  });

  it('a triggered quality check runs as quality-check-{id} and leaves its report', { timeout: 150_000 }, async () => {
    await insertSubjects(api.database.db, api.keyring, 5);
    const run = await triggerAndWait('quality-check');
    const checkId = run.result!.result.checkId as string;
    expect(run.result).toMatchObject({ workflowType: 'qualityCheck', workflowId: `quality-check-${checkId}` });
    const [report] = await api.database.db.select().from(qualityReports).where(eq(qualityReports.id, checkId));
    expect(report).toMatchObject({ status: 'completed', subjectsChecked: 5, requestedBy: 'schedule:quality-check' });
  });

  it('a triggered key rotation runs as key-rotation-{id} and leaves its evidence', { timeout: 150_000 }, async () => {
    await insertSubjects(api.database.db, api.keyring, 5);
    const run = await triggerAndWait('key-rotation');
    const rotationId = run.result!.result.rotationId as string;
    expect(run.result).toMatchObject({
      workflowType: 'keyRotation',
      workflowId: `key-rotation-${rotationId}`,
      result: { toVersion: 2, retiredVersions: [1], keysRewrapped: 10, keysVerified: 10 },
    });
    const [rotation] = await api.database.db.select().from(keyRotations).where(eq(keyRotations.id, rotationId));
    expect(rotation).toMatchObject({ status: 'completed', requestedBy: 'schedule:key-rotation', toVersion: 2 });
    const keys = await api.database.db.select({ kek: subjectKeys.kekVersion }).from(subjectKeys);
    expect(new Set(keys.map((k) => k.kek))).toEqual(new Set([2]));
    const versions = await api.database.db.select().from(kekVersions);
    expect(versions.map((v) => [v.version, v.status]).sort()).toEqual([
      [1, 'retired'],
      [2, 'active'],
    ]);
    const [completed] = await listAudit(api.database.db, { action: 'key-rotation.completed', limit: 1 });
    expect(completed).toMatchObject({ targetId: rotationId, details: { keysRewrapped: 10 } });
  });
});

/** The process's own audit entry, written by the run the schedule started. */
const auditedBy = async (action: string, workflowId: string) =>
  (await listAudit(api.database.db, { action, limit: 100 })).filter((e) => e.workflowId === workflowId);

describe('the review schedules triggered through the API run their process and leave its evidence', () => {
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
