import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertSchedules, viewSchedule } from '../../activities/schedules';
import { auditLog, restoreTests } from '../../db/schema';
import { restoreTestWorkflowId } from '../../domain/ids';
import { seedPrincipal } from '../helpers/api';
import { insertBackupRow } from '../helpers/backup-rows';
import { deleteTestSchedules } from '../helpers/running-app';
import { createTestApp, type TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';
import { hidden, request, signIn } from './session';

/** The console's Backups and Schedules pages over the same code as the API routes (no worker: starts only). */
let api: TestApp;
beforeAll(async () => {
  api = await createTestApp();
}, 120_000);
afterAll(async () => {
  await deleteTestSchedules(api);
  await api?.close();
});

describe('console: backups', () => {
  it('lists backups with their restore test; an owner starts a restore test once per form; an auditor has no button and is refused', async () => {
    const { db } = api.database;
    const backupId = await insertBackupRow(db, { lastRestoreTest: 'pass' });
    const owner = await seedPrincipal(db, 'owner');
    const o = await signIn(api, owner.key);
    const page = await request(api, o.jar, '/console/backups');
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain(`id="backup-${backupId}"`);
    expect(html).toContain('Restore test now');
    const formKey = hidden(html, 'idempotencyKey')!;
    const form = { _csrf: o.csrf, idempotencyKey: formKey };
    const started = await request(api, o.jar, `/console/backups/${backupId}/restore-tests`, { form });
    expect(started.status).toBe(303);
    expect(started.headers.get('location')).toBe('/console/backups?done=test');
    // The same form sent again starts nothing new.
    expect((await request(api, o.jar, `/console/backups/${backupId}/restore-tests`, { form })).status).toBe(303);
    const audits = await db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.apiKeyId, owner.keyId), eq(auditLog.targetType, 'restore-test')));
    expect(audits).toHaveLength(1);
    const restoreTestId = audits[0]!.targetId;
    const handle = api.temporal.workflow.getHandle(restoreTestWorkflowId(restoreTestId));
    expect((await handle.describe()).status.name).toBe('RUNNING');
    await handle.terminate('test done');
    expect(await db.select().from(restoreTests).where(eq(restoreTests.backupId, backupId))).toEqual([]);

    // Nothing to restore: the API's refusal, as a page.
    const running = await insertBackupRow(db, { status: 'running' });
    const refused = await request(api, o.jar, `/console/backups/${running}/restore-tests`, { form });
    expect(refused.status).toBe(409);
    expect(await refused.text()).toContain('backup-running');

    const auditor = await signIn(api, (await seedPrincipal(db, 'auditor')).key);
    const view = await (await request(api, auditor.jar, '/console/backups')).text();
    expect(view).toContain(`id="backup-${backupId}"`);
    expect(view).not.toContain('Restore test now');
    const forged = await request(api, auditor.jar, `/console/backups/${backupId}/restore-tests`, {
      form: { _csrf: auditor.csrf },
    });
    expect(forged.status).toBe(403);
  });
});

describe('console: schedules', () => {
  it('shows next runs; an admin pauses, resumes and triggers (audited); an owner is refused', async () => {
    const { db } = api.database;
    await upsertSchedules({ client: api.temporal, db }, api.schedules);
    const admin = await seedPrincipal(db, 'admin');
    const a = await signIn(api, admin.key);
    const html = await (await request(api, a.jar, '/console/schedules')).text();
    expect(html).toContain('id="schedule-backup"');
    expect(html).toContain('0 2 * * *');
    const backup = api.schedules.find((s) => s.name === 'backup')!;

    const paused = await request(api, a.jar, '/console/schedules/backup/pause', { form: { _csrf: a.csrf } });
    expect(paused.status).toBe(303);
    expect((await viewSchedule(api.temporal, backup)).paused).toBe(true);
    expect(await (await request(api, a.jar, '/console/schedules?done=saved')).text()).toContain('Resume backup');
    await request(api, a.jar, '/console/schedules/backup/resume', { form: { _csrf: a.csrf } });
    expect((await viewSchedule(api.temporal, backup)).paused).toBe(false);

    const triggered = await request(api, a.jar, '/console/schedules/backup-freshness/trigger', {
      form: { _csrf: a.csrf },
    });
    expect(triggered.status).toBe(303);
    const actions = await waitFor(async () => {
      const rows = await db.select().from(auditLog).where(eq(auditLog.apiKeyId, admin.keyId));
      return rows.some((r) => r.action === 'schedule.triggered') ? rows.map((r) => r.action) : undefined;
    }, 'the trigger audited');
    expect(actions.filter((x) => x === 'schedule.updated')).toHaveLength(2);
    expect((await request(api, a.jar, '/console/schedules/nope/pause', { form: { _csrf: a.csrf } })).status).toBe(404);

    const owner = await signIn(api, (await seedPrincipal(db, 'owner')).key);
    expect((await request(api, owner.jar, '/console/schedules')).status).toBe(403);
    const forged = await request(api, owner.jar, '/console/schedules/backup/pause', { form: { _csrf: owner.csrf } });
    expect(forged.status).toBe(403);
    expect((await viewSchedule(api.temporal, backup)).paused).toBe(false);
  });
});
