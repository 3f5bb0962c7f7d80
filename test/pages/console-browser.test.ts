import { randomUUID } from 'node:crypto';
import { desc, eq } from 'drizzle-orm';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createObligation } from '../../activities/obligations';
import { upsertSchedules, viewSchedule } from '../../activities/schedules';
import { revokeApiKey } from '../../activities/users';
import { auditLog, backups, restoreTests } from '../../db/schema';
import type { RunningApi } from '../../runtime/app-server';
import { bearer, readJson } from '../helpers/api';
import { axeViolations, clickButton, newPage, shoot, signIn, skipWithoutChromium } from '../helpers/browser';
import { insertBackupRow } from '../helpers/backup-rows';
import { pagesOf, seedPolicy, seedStaff, user } from '../helpers/incidents';
import { expectAxeClean, startBrowserStack, type BrowserStack } from '../helpers/browser-stack';
import type { TestServices } from '../helpers/services';
import { waitFor } from '../helpers/wait';

/**
 * The console in a real headless Chromium against a real API server and worker: the responder's journey runs with
 * JavaScript off (every page works without it). Each page is checked with axe-core for serious or critical
 * violations (in a context allowed to inject it). Without a browser the file is skipped locally and fails in CI.
 */
const SKIP = skipWithoutChromium('console browser tests');

/** The level-1 wait of the responder journey's policy: the acknowledgement must land inside it. */
const LEVEL_WAIT_SECONDS = 20;

let services: TestServices;
let api: RunningApi;
let browser: Browser;
let stack: BrowserStack;
const messages: string[] = [];
type Staff = Awaited<ReturnType<typeof seedStaff>>;
let owner: Staff;
let responder: Staff;
let second: Staff;
let auditor: Staff;

interface Incident {
  status: string;
  acknowledgedBy: string | null;
  timeline: { type: string; details: Record<string, unknown> }[];
}
const incidentOf = async (id: string) =>
  readJson<Incident>(await fetch(`${api.url}/v1/incidents/${id}`, { headers: bearer(owner.key) }));

const openIncident = async (title: string, policyId: string) => {
  const res = await fetch(`${api.url}/v1/incidents`, {
    method: 'POST',
    headers: bearer(owner.key),
    body: JSON.stringify({ title, severity: 'sev1', category: 'data-breach', escalationPolicyId: policyId }),
  });
  expect(res.status).toBe(202);
  return (await readJson<{ id: string }>(res)).id;
};

/** A fresh page in this file's browser (see `newPage`). */
const openPage = (o: { axe?: boolean } = {}) => newPage(browser, o);

const latestBackup = async () =>
  (await services.database.db.select({ id: backups.id }).from(backups).orderBy(desc(backups.startedAt)).limit(1))[0]
    ?.id;

describe.skipIf(SKIP)('the console in headless Chromium', () => {
  beforeAll(async () => {
    stack = await startBrowserStack({ onMessage: (body) => messages.push(body) });
    ({ services, api, browser } = stack);
    const { db } = services.database;
    owner = await seedStaff(db, services.keyring, 'owner');
    responder = await seedStaff(db, services.keyring, 'responder', 'responder one');
    second = await seedStaff(db, services.keyring, 'responder', 'responder two');
    auditor = await seedStaff(db, services.keyring, 'auditor');
  }, 180_000);
  afterAll(async () => {
    for (const s of services?.schedules ?? [])
      await services.temporal.schedule
        .getHandle(s.scheduleId)
        .delete()
        .catch(() => {});
    await stack?.stop();
  });

  it('a responder follows the page’s link, signs in, acknowledges in the console, and the escalation stops', async () => {
    const { db } = services.database;
    const policy = await seedPolicy(db, [
      { targets: [user(responder.userId)], waitSeconds: LEVEL_WAIT_SECONDS },
      { targets: [user(second.userId)], waitSeconds: LEVEL_WAIT_SECONDS },
    ]);
    const id = await openIncident('Card numbers in an application log', policy.id);
    const message = await waitFor(
      async () => messages.find((m) => m.includes(id) && m.includes('/incident-ack/')),
      'the page notification',
    );
    const link = /https?:\/\/[^\s"\\]+\/incident-ack\/[A-Za-z0-9._~-]+/.exec(message)![0];
    const [firstPage] = await pagesOf(db, id);

    const { page, context, csp } = await openPage();
    expect((await page.goto(link))?.status()).toBe(200);
    await Promise.all([
      page.waitForLoadState(),
      page.getByRole('link', { name: 'Open the incident in the console' }).click(),
    ]);
    expect(new URL(page.url()).pathname).toBe('/console/sign-in');
    await signIn(page, responder.key);
    expect(new URL(page.url()).pathname).toBe(`/console/incidents/${id}`);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toContain('Card numbers in an application log');
    expect(await page.locator('.page-row').count()).toBe(1);
    expect(await page.locator('script').count()).toBe(0);

    await clickButton(page, 'Acknowledge');
    const ackedAt = Date.now();
    expect(await page.getByRole('status').textContent()).toBe('Acknowledged. The escalation has stopped.');
    expect(await page.textContent('#incident-status')).toBe('acknowledged');
    expect(await page.getByRole('button', { name: 'Acknowledge' }).count()).toBe(0);
    const incident = await incidentOf(id);
    expect(incident.acknowledgedBy).toBe(`user:${responder.userId}`);
    expect(incident.timeline.find((e) => e.type === 'acknowledged')?.details).toMatchObject({ method: 'console' });

    // A note through the console lands on the timeline with its text.
    await page.getByLabel('Note', { exact: true }).fill('rotating the log bucket keys');
    await clickButton(page, 'Add note');
    expect(await page.textContent('#timeline-list')).toContain('rotating the log bucket keys');
    await shoot(page, 'incident');

    // The escalation stopped: past the moment level 2 would have been paged, only level 1 was.
    expect(ackedAt).toBeLessThan(firstPage!.pagedAt.getTime() + LEVEL_WAIT_SECONDS * 1000);
    const level2Due = firstPage!.pagedAt.getTime() + LEVEL_WAIT_SECONDS * 1000 + 3000;
    await waitFor(async () => (Date.now() > level2Due ? true : undefined), 'the moment level 2 was due', 60_000);
    expect((await pagesOf(db, id)).map((p) => p.level)).toEqual([1]);
    expect(csp).toEqual([]);

    // A POST without the CSRF token is refused and changes nothing.
    const forged = await context.request.post(`${api.url}/console/incidents/${id}/notes`, {
      form: { text: 'forged' },
      maxRedirects: 0,
    });
    expect(forged.status()).toBe(403);
    expect(await page.goto(`${api.url}/console/incidents/${id}`).then((r) => r?.status())).toBe(200);
    expect(await page.textContent('#timeline-list')).not.toContain('forged');

    // The responder's page, with every form it offers, passes axe too (a second session of the same key).
    await expectAxeClean(browser, api.url, responder.key, [{ path: `/console/incidents/${id}`, button: 'Resolve' }]);

    // Revoking the key ends the session at once.
    await revokeApiKey(db, responder.keyId, { actor: 'test:revoke' });
    await page.goto(`${api.url}/console/incidents/${id}`);
    expect(new URL(page.url()).pathname).toBe('/console/sign-in');
    await context.close();
  }, 120_000);

  it('an owner sees no Acknowledge button, and a forged acknowledgement with a valid token is refused (403)', async () => {
    const { db } = services.database;
    const policy = await seedPolicy(db, [{ targets: [user(second.userId)], waitSeconds: 600 }]);
    const id = await openIncident('Lost laptop with a customer export', policy.id);
    await insertBackupRow(db, { lastRestoreTest: 'pass' });
    await services.database.db.insert(restoreTests).values({
      id: randomUUID(),
      backupId: (await latestBackup())!,
      status: 'pass',
      trigger: 'after-backup',
      requestedBy: 'test',
      rtoMs: 4_200,
      rpoMs: 61_000,
      finishedAt: new Date(),
    });
    const obligation = await createObligation(
      db,
      {
        key: 'board-report',
        title: 'Quarterly report to the board',
        source: 'PIPL Art. 52 (test)',
        recurrenceMonths: 3,
        nextDueAt: new Date(Date.now() + 10 * 86_400_000).toISOString(),
      },
      { actor: 'test:seed' },
      new Date(),
    );
    await waitFor(async () => ((await pagesOf(db, id)).length ? true : undefined), 'the first page');
    const { page, context } = await openPage({ axe: true });
    await page.goto(`${api.url}/console`);
    expect(await axeViolations(page)).toEqual([]);
    await signIn(page, owner.key);
    expect(new URL(page.url()).pathname).toBe('/console');
    expect(await page.getByRole('link', { name: 'Audit' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Lost laptop with a customer export' }).count()).toBe(1);
    expect(await page.textContent('#restore-test')).toContain('pass');
    expect(await page.textContent('#obligations-due-list')).toContain('Quarterly report to the board');
    expect(await axeViolations(page)).toEqual([]);
    await shoot(page, 'today');
    await Promise.all([page.waitForLoadState(), page.getByRole('link', { name: 'Obligations' }).first().click()]);
    expect(await page.textContent('#obligation-board-report .obligation-status')).toBe('due soon');
    expect(await axeViolations(page)).toEqual([]);
    await page.goto(`${api.url}/console/obligations/${obligation.id}`);
    await page.getByLabel('Evidence note').fill('Board minutes filed as DOC-12');
    await clickButton(page, 'Record evidence and complete');
    expect(await page.getByRole('status').textContent()).toBe('Recorded. The next due date has moved on.');
    expect(await page.textContent('#evidence-list')).toContain('Board minutes filed as DOC-12');
    expect(await axeViolations(page)).toEqual([]);
    await shoot(page, 'obligations');
    await Promise.all([page.waitForLoadState(), page.getByRole('link', { name: 'Backups' }).first().click()]);
    expect(await page.getByRole('button', { name: 'Restore test now' }).count()).toBeGreaterThan(0);
    expect(await page.locator('.restore-differed').first().textContent()).toContain('nothing');
    expect(await axeViolations(page)).toEqual([]);
    await shoot(page, 'backups');
    await page.goto(`${api.url}/console`);
    await Promise.all([
      page.waitForLoadState(),
      page.getByRole('link', { name: 'Lost laptop with a customer export' }).click(),
    ]);
    expect(await page.getByRole('button', { name: 'Acknowledge' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Add note' }).count()).toBe(0);
    expect(await axeViolations(page)).toEqual([]);

    const csrf = await page.locator('input[name="_csrf"]').first().getAttribute('value');
    expect(csrf).toBeTruthy();
    const forged = await context.request.post(`${api.url}/console/incidents/${id}/ack`, {
      form: { _csrf: csrf! },
      maxRedirects: 0,
    });
    expect(forged.status()).toBe(403);
    expect((await incidentOf(id)).acknowledgedBy).toBeNull();

    // In Chinese, by the switch.
    await page.goto(`${api.url}/console?lang=zh-CN`);
    expect(await page.getAttribute('html', 'lang')).toBe('zh-CN');
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('今日');
    expect(await axeViolations(page)).toEqual([]);
    await context.close();
  }, 120_000);

  it('an admin pauses and resumes a schedule; the page passes axe', async () => {
    const { db } = services.database;
    await upsertSchedules({ client: services.temporal, db }, services.schedules);
    const admin = await seedStaff(db, services.keyring, 'admin');
    const { page, context } = await openPage({ axe: true });
    await page.goto(`${api.url}/console/schedules`);
    await signIn(page, admin.key);
    expect(new URL(page.url()).pathname).toBe('/console/schedules');
    expect(await axeViolations(page)).toEqual([]);
    await clickButton(page, 'Pause backup');
    expect(await page.getByRole('status').textContent()).toBe('Saved.');
    expect(await page.textContent('#schedule-backup .schedule-state')).toBe('paused');
    await shoot(page, 'schedules');
    await clickButton(page, 'Resume backup');
    expect(await page.textContent('#schedule-backup .schedule-state')).toBe('active');
    // The evidence of the last run: the process it started and that process's result.
    await clickButton(page, 'Run now obligations-check');
    const check = services.schedules.find((s) => s.name === 'obligations-check')!;
    await waitFor(
      async () => ((await viewSchedule(services.temporal, check)).lastRun?.status === 'COMPLETED' ? true : undefined),
      'the obligations check to complete',
    );
    await page.goto(`${api.url}/console/schedules`);
    expect(await page.textContent('#schedule-obligations-check .schedule-last-run')).toMatch(/obligations-check-/);
    expect(await axeViolations(page)).toEqual([]);
    await context.close();
  }, 120_000);

  it('an auditor filters the trail and verifies the chain: the head hash shown is the stored one', async () => {
    const { page, context } = await openPage({ axe: true });
    await page.goto(`${api.url}/console/audit`);
    await shoot(page, 'sign-in');
    await signIn(page, auditor.key);
    expect(new URL(page.url()).pathname).toBe('/console/audit');
    expect(await axeViolations(page)).toEqual([]);
    await page.getByLabel('Action').fill('console.signed-in');
    await clickButton(page, 'Filter');
    const actions = await page.locator('.audit-row td:nth-child(4)').allTextContents();
    expect(actions.length).toBeGreaterThan(0);
    expect(new Set(actions)).toEqual(new Set(['console.signed-in']));

    await clickButton(page, 'Verify chain');
    expect(await page.getByRole('heading', { name: 'The chain holds.' }).count()).toBe(1);
    const head = (await page.textContent('#head-hash'))!.trim();
    const [row] = await services.database.db.select().from(auditLog).where(eq(auditLog.hash, head));
    expect(row).toBeDefined();
    expect(await axeViolations(page)).toEqual([]);
    await shoot(page, 'audit-verify');
    await context.close();
  }, 120_000);

  it('the API reference (Swagger UI, offline, no CSP violation) tries a route with a bearer key', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const csp: string[] = [];
    page.on('console', (m) => void (/Content Security Policy/i.test(m.text()) && csp.push(m.text())));
    const elsewhere: string[] = [];
    page.on(
      'request',
      (r) => void (!r.url().startsWith(api.url) && !r.url().startsWith('data:') && elsewhere.push(r.url())),
    );
    expect((await page.goto(`${api.url}/docs`))?.status()).toBe(200);
    const verify = page.locator('.opblock-get', { hasText: '/v1/audit/verify' });
    await verify.first().waitFor();
    expect(await page.locator('.opblock').count()).toBeGreaterThan(20);

    await page.locator('.auth-wrapper .authorize').click();
    await page.locator('.auth-container input').fill(auditor.key);
    await page.locator('.auth-btn-wrapper .authorize').click();
    await page.locator('.auth-btn-wrapper .btn-done').click();
    await verify.locator('.opblock-summary').first().click();
    await verify.getByRole('button', { name: 'Try it out' }).click();
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${api.url}/v1/audit/verify`),
      verify.getByRole('button', { name: 'Execute' }).click(),
    ]);
    expect(answer.status()).toBe(200);
    expect(await answer.request().headerValue('authorization')).toBe(`Bearer ${auditor.key}`);
    expect(((await answer.json()) as { valid: boolean }).valid).toBe(true);
    expect(csp).toEqual([]);
    expect(elsewhere).toEqual([]);
    await context.close();
  }, 120_000);
});
