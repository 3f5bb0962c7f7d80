import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Worker } from '@temporalio/worker';
import { and, eq, inArray } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAudit } from '../../activities/audit';
import {
  backupObjectKey,
  backupStorageFor,
  manifestObjectKey,
  type BackupStorage,
} from '../../activities/backup-storage';
import { alerts, backups, incidents, restoreTests } from '../../db/schema';
import { selectRetention, type RetentionPolicy } from '../../domain/backup-retention';
import {
  backupFreshnessWorkflowId,
  backupRetentionWorkflowId,
  backupWorkflowId,
  incidentWorkflowId,
  restoreDrillWorkflowId,
} from '../../domain/ids';
import { backup, backupFreshness, backupRetention, restoreDrill } from '../../workflows';
import { insertBackupRow, insertRunningRestoreTest } from '../helpers/backup-rows';
import { seedPolicy, seedStaff, user } from '../helpers/incidents';
import { createTestServices, createTestWorker, type TestServices } from '../helpers/services';
import { waitFor } from '../helpers/wait';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
let s: TestServices;
let worker: Worker;
let running: Promise<void>;
let storage: BackupStorage;
const dir = mkdtempSync(join(tmpdir(), 'custodian-backup-reviews-'));

beforeAll(async () => {
  s = await createTestServices({ config: { BACKUP_DIR: dir } });
  worker = await createTestWorker(s);
  running = worker.run();
  storage = backupStorageFor(s.config);
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await s.close();
  rmSync(dir, { recursive: true, force: true });
});

const run = <T>(fn: () => Promise<T>) => fn();
const taskQueue = () => s.config.TEMPORAL_TASK_QUEUE;

const checkFreshness = (thresholdMs: number) => {
  const checkId = randomUUID();
  return run(() =>
    s.temporal.workflow.execute(backupFreshness, {
      taskQueue: taskQueue(),
      workflowId: backupFreshnessWorkflowId(checkId),
      args: [{ checkId, requestedBy: 'test', thresholdMs }],
    }),
  );
};

const alertsFor = (checkId: string) =>
  s.database.db
    .select()
    .from(alerts)
    .where(and(eq(alerts.targetType, 'backup-freshness'), eq(alerts.targetId, checkId)));

const freshnessRecord = async (checkId: string) =>
  (
    await listAudit(s.database.db, {
      action: 'backup.freshness-checked',
      targetType: 'backup-freshness',
      targetId: checkId,
      limit: 10,
    })
  ).map((e) => ({ action: e.action, details: e.details }));

describe('backup freshness alarm', () => {
  // One database for the file: the cases run in order, each adding the backups it needs.
  it('raises an alert when there is no verified backup (failed, untested and deleted ones do not count)', async () => {
    await insertBackupRow(s.database.db, { lastRestoreTest: 'fail' });
    await insertBackupRow(s.database.db, { lastRestoreTest: null });
    await insertBackupRow(s.database.db, { lastRestoreTest: 'pass', status: 'deleted' });
    const result = await checkFreshness(60_000);
    expect(result).toMatchObject({ fresh: false, newestVerifiedBackupId: null, ageMs: null, thresholdMs: 60_000 });
    const [alert] = await alertsFor(result.checkId);
    expect(alert).toMatchObject({ kind: 'backup-stale', status: 'sent', reason: 'there is no verified backup' });
    expect(result.alertId).toBe(alert!.id);
    expect(await freshnessRecord(result.checkId)).toEqual([
      { action: 'backup.freshness-checked', details: expect.objectContaining({ fresh: false, alertId: alert!.id }) },
    ]);
  });

  it('raises an alert when the newest verified backup is older than the threshold', async () => {
    const old = await insertBackupRow(s.database.db, {
      lastRestoreTest: 'pass',
      snapshotAt: new Date(Date.now() - 120_000),
    });
    // A newer backup whose test failed does not make the data fresh.
    await insertBackupRow(s.database.db, { lastRestoreTest: 'fail', snapshotAt: new Date() });
    const result = await checkFreshness(60_000);
    expect(result).toMatchObject({ fresh: false, newestVerifiedBackupId: old });
    expect(result.ageMs).toBeGreaterThanOrEqual(120_000);
    const [alert] = await alertsFor(result.checkId);
    expect(alert!.reason).toMatch(/^the newest verified backup is \d+ s old \(threshold 60 s\)$/);
    expect(alert!.details).toMatchObject({ newestVerifiedBackupId: old, thresholdMs: 60_000 });
  });

  it('stays quiet when the newest verified backup is within the threshold, and records that it checked', async () => {
    const recent = await insertBackupRow(s.database.db, {
      lastRestoreTest: 'pass',
      snapshotAt: new Date(Date.now() - 5_000),
    });
    const result = await checkFreshness(60_000);
    expect(result).toMatchObject({ fresh: true, newestVerifiedBackupId: recent, alertId: null });
    expect(result.ageMs).toBeGreaterThanOrEqual(5_000);
    expect(result.ageMs).toBeLessThan(60_000);
    expect(await alertsFor(result.checkId)).toEqual([]);
    expect(await freshnessRecord(result.checkId)).toEqual([
      {
        action: 'backup.freshness-checked',
        details: expect.objectContaining({ fresh: true, newestVerifiedBackupId: recent }),
      },
    ]);
    // The same backup is stale against a threshold shorter than its age.
    expect((await checkFreshness(1_000)).fresh).toBe(false);
  });
});

describe('backup freshness opens an incident once per stale episode', () => {
  it('the first stale check opens a sev3 backup incident; the next only pages; a fresh backup ends the episode', async () => {
    const db = s.database.db;
    await db.delete(alerts);
    await db.update(backups).set({ status: 'deleted', deletedAt: new Date() });
    const responder = await seedStaff(db, s.keyring, 'responder');
    await seedPolicy(db, [{ targets: [user(responder.userId)], waitSeconds: 600 }]);
    await insertBackupRow(db, { lastRestoreTest: 'pass', snapshotAt: new Date(Date.now() - 120_000) });

    const first = await checkFreshness(60_000);
    expect(first).toMatchObject({ fresh: false, incidentId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const [incident] = await waitFor(async () => {
      const rows = await db.select().from(incidents).where(eq(incidents.id, first.incidentId!));
      return rows.length ? rows : undefined;
    }, 'the incident recorded');
    expect(incident).toMatchObject({ severity: 'sev3', category: 'backup', openedBy: 'system:backupFreshness' });

    const second = await checkFreshness(60_000);
    expect(second).toMatchObject({ fresh: false, incidentId: null });
    expect((await alertsFor(second.checkId)).length).toBe(1);

    // A newer verified backup that goes stale in its turn is a new episode.
    await insertBackupRow(db, { lastRestoreTest: 'pass', snapshotAt: new Date() });
    expect(await checkFreshness(60_000)).toMatchObject({ fresh: true, incidentId: null });
    const third = await checkFreshness(1);
    expect(third.incidentId).toMatch(/^[0-9a-f-]{36}$/);
    expect(third.incidentId).not.toBe(first.incidentId);
    for (const id of [first.incidentId!, third.incidentId!])
      await s.temporal.workflow.getHandle(incidentWorkflowId(id)).terminate('test over');
  });
});

describe('backup retention', () => {
  const policy: RetentionPolicy = { keepDaily: 3, keepWeekly: 2, keepMonthly: 2 };

  const retain = (p: RetentionPolicy = policy) => {
    const retentionId = randomUUID();
    return run(() =>
      s.temporal.workflow.execute(backupRetention, {
        taskQueue: taskQueue(),
        workflowId: backupRetentionWorkflowId(retentionId),
        args: [{ retentionId, requestedBy: 'test', ...p }],
      }),
    );
  };

  const withFiles = async (id: string) => {
    await storage.put(backupObjectKey(id), Readable.from([Buffer.from('ciphertext')]));
    await storage.put(manifestObjectKey(id), Readable.from([Buffer.from('{}')]));
    return id;
  };

  it('deletes what GFS does not keep — files, rows and one audit entry each — and keeps the newest verified backup', async () => {
    await s.database.db.delete(alerts);
    // Clear the freshness cases' rows: this case owns the table.
    await s.database.db.update(backups).set({ status: 'deleted', deletedAt: new Date() });
    const now = Date.now();
    const noon = now - (now % DAY) - 12 * HOUR;
    // Sixty daily backups, untested; the only verified one is 50 days old, so it is kept beyond the policy.
    const daily: string[] = [];
    for (let day = 0; day < 60; day += 1)
      daily.push(
        await withFiles(
          await insertBackupRow(s.database.db, {
            snapshotAt: new Date(noon - day * DAY),
            lastRestoreTest: day === 50 ? 'pass' : null,
          }),
        ),
      );
    const failedToday = await withFiles(
      await insertBackupRow(s.database.db, { snapshotAt: new Date(noon + HOUR), lastRestoreTest: 'fail' }),
    );
    const running = await insertBackupRow(s.database.db, { status: 'running', snapshotAt: new Date(noon - 70 * DAY) });
    const keyringExpired = await insertBackupRow(s.database.db, {
      kind: 'keyring',
      retainUntil: new Date(now - 1000),
    });
    const keyringKept = await insertBackupRow(s.database.db, { kind: 'keyring', retainUntil: new Date(now + DAY) });

    const rows = await s.database.db
      .select()
      .from(backups)
      .where(inArray(backups.id, [...daily, failedToday]));
    const expected = selectRetention(
      rows.map((r) => ({ id: r.id, takenAt: r.snapshotAt!.getTime(), restoreTest: r.lastRestoreTestStatus })),
      policy,
    );
    expect(expected.pinned).toBe(daily[50]);

    const result = await retain();
    expect(result.pinned).toBe(daily[50]);
    expect(result.kept).toBe(expected.keep.length);
    expect(new Set(result.deleted)).toEqual(new Set([...expected.remove, keyringExpired]));
    expect(result.deleted).toContain(failedToday);
    expect(result.skipped).toEqual([]);

    const after = await s.database.db
      .select({ id: backups.id, status: backups.status, deletedAt: backups.deletedAt })
      .from(backups)
      .where(inArray(backups.id, [...daily, failedToday, running, keyringExpired, keyringKept]));
    const status = new Map(after.map((r) => [r.id, r.status]));
    for (const id of result.deleted) expect(status.get(id)).toBe('deleted');
    for (const { id } of expected.keep) expect(status.get(id)).not.toBe('deleted');
    expect(status.get(daily[50]!)).toBe('verified');
    expect(status.get(running)).toBe('running');
    expect(status.get(keyringKept)).toBe('completed');
    const left = new Set((await storage.list()).map((o) => o.key));
    for (const id of expected.remove) {
      expect(left.has(backupObjectKey(id))).toBe(false);
      expect(left.has(manifestObjectKey(id))).toBe(false);
    }
    for (const { id } of expected.keep) expect(left.has(backupObjectKey(id))).toBe(true);

    const deletions = await listAudit(s.database.db, { action: 'backup.deleted', limit: 1000 });
    expect(deletions.map((e) => e.targetId).sort()).toEqual([...result.deleted].sort());
    expect(deletions.find((e) => e.targetId === failedToday)!.details).toMatchObject({
      kind: 'data',
      reason: 'retention',
      previousStatus: 'restore-test-failed',
    });
    expect(deletions.find((e) => e.targetId === keyringExpired)!.details).toMatchObject({
      kind: 'keyring',
      reason: 'keyring-retention',
    });

    // Idempotent: a second run deletes nothing and audits nothing more.
    const again = await retain();
    expect(again).toMatchObject({ deleted: [], skipped: [], pinned: daily[50], kept: expected.keep.length });
    expect(await listAudit(s.database.db, { action: 'backup.deleted', limit: 1000 })).toHaveLength(deletions.length);
  });

  it('leaves a backup a restore test is reading, and never deletes the newest verified one even with a zero policy', async () => {
    const kept = await s.database.db
      .select({ id: backups.id, status: backups.status })
      .from(backups)
      .where(and(eq(backups.kind, 'data'), inArray(backups.status, ['completed', 'verified'])));
    const pinned = kept.find((k) => k.status === 'verified')!.id;
    const drilled = kept.find((k) => k.status === 'completed')!.id;
    await insertRunningRestoreTest(s.database.db, drilled);

    const result = await retain({ keepDaily: 0, keepWeekly: 0, keepMonthly: 0 });
    expect(result.pinned).toBe(pinned);
    expect(result.skipped).toEqual([{ backupId: drilled, reason: 'restore-test-running' }]);
    expect(result.deleted).toHaveLength(kept.length - 2);
    const [stillPinned] = await s.database.db.select().from(backups).where(eq(backups.id, pinned));
    expect(stillPinned!.status).toBe('verified');
  });
});

describe('restore drill', () => {
  it('records that there was nothing to drill when no verified backup exists', async () => {
    await s.database.db.update(backups).set({ status: 'deleted', deletedAt: new Date() });
    const drillId = randomUUID();
    const result = await run(() =>
      s.temporal.workflow.execute(restoreDrill, {
        taskQueue: taskQueue(),
        workflowId: restoreDrillWorkflowId(drillId),
        args: [{ drillId, requestedBy: 'test', seed: 7 }],
      }),
    );
    expect(result).toEqual({
      drillId,
      seed: 7,
      candidates: 0,
      backupId: null,
      restoreTestId: null,
      status: 'no-verified-backup',
    });
    const [picked] = await listAudit(s.database.db, { targetType: 'restore-drill', targetId: drillId, limit: 5 });
    expect(picked).toMatchObject({ action: 'backup.restore-drill-picked', details: { seed: 7, candidates: 0 } });
  });

  it('restore-tests an older verified backup chosen by the seed, and the newest only when it is the only one', async () => {
    const runBackup = async () => {
      const backupId = randomUUID();
      await s.temporal.workflow.execute(backup, {
        taskQueue: taskQueue(),
        workflowId: backupWorkflowId(backupId),
        args: [{ backupId, keyringBackupId: randomUUID(), requestedBy: 'test', heartbeatTimeout: '20 seconds' }],
      });
      return backupId;
    };
    const runDrill = (seed: number) => {
      const drillId = randomUUID();
      return s.temporal.workflow.execute(restoreDrill, {
        taskQueue: taskQueue(),
        workflowId: restoreDrillWorkflowId(drillId),
        args: [{ drillId, requestedBy: 'schedule:restore-drill', seed, heartbeatTimeout: '20 seconds' }],
      });
    };
    const first = await runBackup();
    const alone = await runDrill(5);
    expect(alone).toMatchObject({ candidates: 1, backupId: first, status: 'pass' });

    const second = await runBackup();
    const third = await runBackup();
    // Verified: first, second, third (newest, left out). Oldest first, so seed 3 → index 1 → second.
    const drilled = await runDrill(3);
    expect(drilled).toMatchObject({ seed: 3, candidates: 2, backupId: second, status: 'pass' });
    expect((await runDrill(4)).backupId).toBe(first);
    expect(drilled.backupId).not.toBe(third);
    const [test] = await s.database.db.select().from(restoreTests).where(eq(restoreTests.id, drilled.restoreTestId!));
    expect(test).toMatchObject({ backupId: second, trigger: 'schedule', status: 'pass' });
    const [picked] = await listAudit(s.database.db, {
      action: 'backup.restore-drill-picked',
      targetId: drilled.drillId,
      limit: 5,
    });
    expect(picked!.details).toEqual({
      drillId: drilled.drillId,
      seed: 3,
      candidates: 2,
      backupId: second,
      restoreTestId: drilled.restoreTestId,
    });
  });
});
