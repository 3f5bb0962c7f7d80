import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupObjectKey } from '../../activities/backup-storage';
import { createObligation, findObligation, updateObligation } from '../../activities/obligations';
import { upsertSchedules, viewSchedule } from '../../activities/schedules';
import { auditLog, obligationCompletions } from '../../db/schema';
import { backupWorkflowId, restoreTestWorkflowId } from '../../domain/ids';
import { backup, restoreTest } from '../../workflows';
import { seedPrincipal } from '../helpers/api';
import { startTestApp } from '../helpers/running-app';
import type { TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';
import { hidden, request, signIn } from './session';

/**
 * The console's compliance calendar (Today's obligations due, the Obligations pages and their evidence form), the
 * evidence of a schedule's last run and what a restore test found different: all from rows the real activities and
 * workflows wrote, through the API's own functions.
 */
let api: TestApp;
let stop: () => Promise<void>;
const dir = mkdtempSync(join(tmpdir(), 'custodian-console-evidence-'));
const DAY = 86_400_000;

beforeAll(async () => {
  ({ api, stop } = await startTestApp({ config: { BACKUP_DIR: dir }, deleteSchedules: true }));
}, 120_000);
afterAll(async () => {
  await stop?.();
  rmSync(dir, { recursive: true, force: true });
});

describe('console: obligations', () => {
  it('Today lists the obligations due; an owner records evidence once per due date; an auditor reads it without a form', async () => {
    const { db } = api.database;
    const owner = await seedPrincipal(db, 'owner');
    const now = new Date();
    const soon = await createObligation(
      db,
      {
        key: `dpo-report-${randomUUID().slice(0, 8)}`,
        title: 'Quarterly report to the board',
        source: 'PIPL Art. 52 (test)',
        recurrenceMonths: 3,
        nextDueAt: new Date(now.getTime() + 10 * DAY).toISOString(),
      },
      { actor: 'test:seed' },
      now,
    );
    const late = await createObligation(
      db,
      {
        key: `vendor-review-${randomUUID().slice(0, 8)}`,
        title: 'Yearly processor review',
        source: 'PIPL Art. 21 (test)',
        ownerId: owner.userId,
        recurrenceMonths: 12,
        nextDueAt: new Date(now.getTime() + 100 * DAY).toISOString(),
      },
      { actor: 'test:seed' },
      now,
    );
    await updateObligation(
      db,
      late.id,
      { nextDueAt: new Date(now.getTime() - 2 * DAY).toISOString() },
      {
        actor: 'test:seed',
      },
    );

    const o = await signIn(api, owner.key);
    const today = await (await request(api, o.jar, '/console')).text();
    const due = /<ul id="obligations-due-list">([\s\S]*?)<\/ul>/.exec(today)?.[1] ?? '';
    expect(due).toContain('Quarterly report to the board');
    expect(due).toContain('due soon');
    expect(due).toContain('Yearly processor review');
    expect(due).toMatch(/overdue · .*overdue by 2d/);
    // The seeded defaults are first due a recurrence from now: not due.
    expect(due).not.toContain('Staff training');
    expect(today).toContain('href="/console/obligations"');

    const list = await (await request(api, o.jar, '/console/obligations')).text();
    expect(list).toContain(`id="obligation-${late.key}"`);
    expect(list).toContain('id="obligation-staff-training"');
    expect(list).toContain(`user:${owner.userId}`);
    expect(list).toContain('every owner (none named)');

    const page = await (await request(api, o.jar, `/console/obligations/${late.id}`)).text();
    expect(page).toContain('<dd id="obligation-status">overdue</dd>');
    const form = { _csrf: o.csrf, dueAt: hidden(page, 'dueAt')!, evidenceNote: 'Review minutes filed as DOC-77' };
    expect(form.dueAt).toBe(new Date(now.getTime() - 2 * DAY).toISOString());

    // The API's body schema: nothing given names evidenceNote, a bad hash names evidenceSha256.
    const empty = await request(api, o.jar, `/console/obligations/${late.id}/complete`, {
      form: { _csrf: o.csrf, dueAt: form.dueAt, evidenceNote: ' ' },
    });
    expect(empty.status).toBe(400);
    expect(await empty.text()).toContain('evidenceNote');
    const badHash = await request(api, o.jar, `/console/obligations/${late.id}/complete`, {
      form: { ...form, evidenceSha256: 'abc' },
    });
    expect(badHash.status).toBe(400);
    expect(await badHash.text()).toContain('evidenceSha256');

    const sha = 'ab'.repeat(32);
    const done = await request(api, o.jar, `/console/obligations/${late.id}/complete`, {
      form: { ...form, evidenceSha256: sha.toUpperCase() },
    });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe(`/console/obligations/${late.id}?done=completed`);
    // The same form again (a resend): the due date has moved, so nothing more is recorded.
    const again = await request(api, o.jar, `/console/obligations/${late.id}/complete`, {
      form: { ...form, evidenceSha256: sha },
    });
    expect(again.status).toBe(409);
    expect(await again.text()).toContain('obligation-due-date-moved');
    const rows = await db.select().from(obligationCompletions).where(eq(obligationCompletions.obligationId, late.id));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ completedBy: `user:${owner.userId}`, apiKeyId: owner.keyId, evidenceSha256: sha });
    expect((await findObligation(db, late.id))!.nextDueAt.getTime()).toBeGreaterThan(now.getTime());
    const [audited] = await db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, 'obligation.completed'), eq(auditLog.targetId, late.id)));
    expect(audited).toMatchObject({ actor: `user:${owner.userId}`, apiKeyId: owner.keyId });
    expect(JSON.stringify(audited!.details)).not.toContain('DOC-77');

    const after = await (await request(api, o.jar, `/console/obligations/${late.id}?done=completed`)).text();
    expect(after).toContain('Recorded. The next due date has moved on.');
    expect(after).toContain('<dd id="obligation-status">scheduled</dd>');
    expect(after).toContain('Review minutes filed as DOC-77');
    expect(after).toContain(sha);
    const listed = await (await request(api, o.jar, '/console/obligations')).text();
    const row = new RegExp(`id="obligation-${late.key}"[\\s\\S]*?</tr>`).exec(listed)![0];
    expect(row).toContain('Review minutes filed as DOC-77');
    expect(row).toContain('<td class="obligation-status">scheduled</td>');
    const zh = await (await request(api, o.jar, `/console/obligations/${soon.id}?lang=zh-CN`)).text();
    expect(zh).toContain('<dd id="obligation-status">即将到期</dd>');
    expect(zh).toContain('记录证据并完成');

    const auditor = await signIn(api, (await seedPrincipal(db, 'auditor')).key);
    const read = await (await request(api, auditor.jar, `/console/obligations/${late.id}?lang=en`)).text();
    expect(read).toContain('Review minutes filed as DOC-77');
    expect(read).not.toContain('name="evidenceNote"');
    const forged = await request(api, auditor.jar, `/console/obligations/${soon.id}/complete`, {
      form: { _csrf: auditor.csrf, dueAt: soon.nextDueAt.toISOString(), evidenceNote: 'forged evidence' },
    });
    expect(forged.status).toBe(403);
    expect(
      await db.select().from(obligationCompletions).where(eq(obligationCompletions.obligationId, soon.id)),
    ).toEqual([]);
    const noToken = await request(api, o.jar, `/console/obligations/${soon.id}/complete`, {
      form: { dueAt: soon.nextDueAt.toISOString(), evidenceNote: 'no token' },
    });
    expect(noToken.status).toBe(403);

    const admin = await signIn(api, (await seedPrincipal(db, 'admin')).key);
    expect((await request(api, admin.jar, '/console/obligations')).status).toBe(403);
    expect(await (await request(api, admin.jar, '/console')).text()).not.toContain('obligations-due');
  });
});

describe('console: evidence of a schedule’s last run', () => {
  it('shows the process the last run started and its result', async () => {
    const { db } = api.database;
    await upsertSchedules({ client: api.temporal, db }, api.schedules);
    const check = api.schedules.find((s) => s.name === 'obligations-check')!;
    const a = await signIn(api, (await seedPrincipal(db, 'admin')).key);
    const started = await request(api, a.jar, '/console/schedules/obligations-check/trigger', {
      form: { _csrf: a.csrf },
    });
    expect(started.status).toBe(303);
    const run = await waitFor(async () => {
      const view = await viewSchedule(api.temporal, check);
      return view.lastRun?.status === 'COMPLETED' ? view.lastRun : undefined;
    }, 'the triggered obligations check to complete');
    const launched = run.result as { workflowId: string; result: { checkId: string; obligations: number } };
    expect(launched.workflowId).toMatch(/^obligations-check-/);
    const html = await (await request(api, a.jar, '/console/schedules')).text();
    const cell = new RegExp(
      `id="schedule-obligations-check"[\\s\\S]*?<td class="schedule-last-run">([\\s\\S]*?)</td>`,
    ).exec(html)![1]!;
    expect(cell).toContain('COMPLETED');
    expect(cell).toContain(launched.workflowId);
    expect(cell).toContain(`<span class="mono">checkId</span>: ${launched.result.checkId}`);
    expect(cell).toContain(`<span class="mono">obligations</span>: ${launched.result.obligations}`);
  });
});

describe('console: what a restore test found different', () => {
  it('a passing test: every table matched; a damaged file: the frame that failed and the hashes that differed', async () => {
    const { db } = api.database;
    const backupId = randomUUID();
    const result = await api.temporal.workflow.execute(backup, {
      taskQueue: api.config.TEMPORAL_TASK_QUEUE,
      workflowId: backupWorkflowId(backupId),
      args: [{ backupId, keyringBackupId: randomUUID(), requestedBy: 'test', heartbeatTimeout: '20 seconds' }],
    });
    expect(result.restoreTest?.status).toBe('pass');
    const owner = await signIn(api, (await seedPrincipal(db, 'owner')).key);
    const cellOf = (html: string) =>
      new RegExp(`id="backup-${backupId}"[\\s\\S]*?<td class="restore-differed">([\\s\\S]*?)</td>`).exec(html)![1]!;
    const passed = cellOf(await (await request(api, owner.jar, '/console/backups')).text());
    expect(passed).toMatch(/(\d+) of \1 tables matched/);
    expect(passed).toContain('nothing: every table matched the manifest');

    const file = join(dir, backupObjectKey(backupId));
    const original = await readFile(file);
    const bytes = Buffer.from(original);
    bytes[100]! ^= 0x08;
    await writeFile(file, bytes);
    const restoreTestId = randomUUID();
    const failed = await api.temporal.workflow.execute(restoreTest, {
      taskQueue: api.config.TEMPORAL_TASK_QUEUE,
      workflowId: restoreTestWorkflowId(restoreTestId),
      args: [{ restoreTestId, backupId, trigger: 'api', requestedBy: 'test' }],
    });
    expect(failed.status).toBe('fail');
    expect(failed.reasons).toContainEqual({ code: 'frame-authentication-failed', frame: 0 });
    const html = await (await request(api, owner.jar, '/console/backups')).text();
    const cell = cellOf(html);
    expect(cell).toContain('frame-authentication-failed · frame 0');
    expect(cell).toMatch(/ciphertext-hash-mismatch · SHA-256: expected [0-9a-f]{12}…, found [0-9a-f]{12}…/);
    const zh = cellOf(await (await request(api, owner.jar, '/console/backups?lang=zh-CN')).text());
    expect(zh).toContain('frame-authentication-failed · 第 0 帧');
  }, 120_000);
});
