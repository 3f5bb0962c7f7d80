import { randomUUID } from 'node:crypto';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { incidentAckToken } from '../../activities/incidents';
import { insertNewSubjects, newSubject, rawSql } from '../../activities/subject-writer';
import { defaultCatalog } from '../../domain/catalog';
import type { RunningApi } from '../../runtime/app-server';
import { bearer, readJson, seedPrincipal } from '../helpers/api';
import { clickButton, newPage, shoot, signIn, skipWithoutChromium } from '../helpers/browser';
import { pagesOf, seedPolicy, seedStaff, user } from '../helpers/incidents';
import { expectAxeClean, startBrowserStack, type BrowserStack } from '../helpers/browser-stack';
import type { TestServices } from '../helpers/services';
import { waitFor } from '../helpers/wait';

/**
 * The console's Subjects page and the page's sign-in link in a real headless Chromium (JavaScript off) against a
 * real API server and worker: an owner finds a subject through the blind index and sees it masked, and a reveal
 * needs a purpose; a responder follows the page notification's link, lands signed in on the incident, acknowledges,
 * and the escalation stops; the link works once and not after it expired.
 */
const SKIP = skipWithoutChromium('console subjects browser tests');

/** The level-1 wait of the responder journey's policy: the acknowledgement must land inside it. */
const LEVEL_WAIT_SECONDS = 20;
const PHONE = '13800007788';
const ID_NUMBER = '990000199001017788';

let services: TestServices;
let api: RunningApi;
let browser: Browser;
let stack: BrowserStack;
const messages: string[] = [];

const audited = async (action: string, targetId: string) =>
  (await services.database.sql`select 1 from audit_log where action = ${action} and target_id = ${targetId}`).length;

describe.skipIf(SKIP)('console subjects and the page link in headless Chromium', () => {
  beforeAll(async () => {
    stack = await startBrowserStack({ onMessage: (body) => messages.push(body) });
    ({ services, api, browser } = stack);
  }, 180_000);
  afterAll(() => stack?.stop());

  it('an owner finds a subject by phone and sees it masked; a reveal needs a purpose and is audited', async () => {
    const { db } = services.database;
    const externalRef = `BRW-${randomUUID().slice(0, 8)}`;
    const subject = newSubject(
      defaultCatalog,
      services.keyring,
      { externalRef, jurisdiction: 'CN', locale: 'zh-CN', fields: {} },
      new Map([
        ['name', '测试用户7788'],
        ['phone', PHONE],
        ['email', 'browser.subject.7788@example.com'],
        ['idNumber', ID_NUMBER],
        ['city', 'Testville'],
      ]),
    );
    await rawSql(db).begin((tx) => insertNewSubjects(tx, randomUUID(), [subject]));
    const subjectId = subject.subject.id;
    const owner = await seedPrincipal(db, 'owner');

    const { page, context, csp } = await newPage(browser);
    await page.goto(`${api.url}/console/subjects`);
    await signIn(page, owner.key);
    expect(new URL(page.url()).pathname).toBe('/console/subjects');
    await page.getByLabel('Search by').selectOption('phone');
    await page.getByLabel('Value').fill(PHONE);
    await page.getByLabel('Purpose').selectOption('customer-service');
    await clickButton(page, 'Search');
    // The search was a POST: the term is in no URL (history, logs, Referer).
    expect(page.url()).toBe(`${api.url}/console/subjects/search`);
    expect(await page.locator('.subject-row').count()).toBe(1);
    expect(await page.textContent('main')).not.toContain(PHONE);
    await Promise.all([page.waitForLoadState(), page.getByRole('link', { name: externalRef }).click()]);

    expect(new URL(page.url()).pathname).toBe(`/console/subjects/${subjectId}`);
    expect(await page.textContent('#field-phone .field-value')).toBe('138****7788');
    expect(await page.textContent('main')).not.toContain(ID_NUMBER);
    expect(await page.locator('script').count()).toBe(0);
    await shoot(page, 'subjects');

    // No purpose chosen: the browser does not send the form (required), and nothing is revealed or audited.
    await page.getByRole('button', { name: 'Reveal', exact: true }).click();
    expect(new URL(page.url()).pathname).toBe(`/console/subjects/${subjectId}`);
    expect(await audited('subject.revealed', subjectId)).toBe(0);

    await page.getByLabel('Purpose', { exact: true }).selectOption('customer-service');
    await clickButton(page, 'Reveal');
    expect(await page.getByRole('status').textContent()).toContain('Revealed for customer-service (audited)');
    expect(await page.textContent('#field-phone .field-value')).toBe(PHONE);
    expect(await page.textContent('main')).not.toContain(ID_NUMBER);
    expect(await audited('subject.revealed', subjectId)).toBe(1);
    expect(csp).toEqual([]);
    expect(services.logLines.join('\n')).not.toContain(PHONE);
    await context.close();

    // Both pages pass axe (a session of its own, JavaScript on for axe only).
    await expectAxeClean(browser, api.url, owner.key, [
      { path: '/console/subjects' },
      { path: `/console/subjects/${subjectId}` },
    ]);
  }, 120_000);

  it('a responder follows the page’s link, lands signed in on the incident, acknowledges; the link works once', async () => {
    const { db } = services.database;
    const owner = await seedStaff(db, services.keyring, 'owner');
    const responder = await seedStaff(db, services.keyring, 'responder', 'responder at 3 a.m.');
    const second = await seedStaff(db, services.keyring, 'responder', 'second responder');
    const policy = await seedPolicy(db, [
      { targets: [user(responder.userId)], waitSeconds: LEVEL_WAIT_SECONDS },
      { targets: [user(second.userId)], waitSeconds: LEVEL_WAIT_SECONDS },
    ]);
    const opened = await fetch(`${api.url}/v1/incidents`, {
      method: 'POST',
      headers: bearer(owner.key),
      body: JSON.stringify({
        title: 'Statement batch mailed to the wrong addresses',
        severity: 'sev1',
        category: 'data-breach',
        escalationPolicyId: policy.id,
        personalData: true,
        jurisdictions: ['CN'],
        affected: { estimatedCount: 1_500_000 },
      }),
    });
    expect(opened.status).toBe(202);
    const { id } = await readJson<{ id: string }>(opened);
    const message = await waitFor(
      async () => messages.find((m) => m.includes(id) && m.includes('/incident-ack/')),
      'the page notification',
    );
    const link = /https?:\/\/[^\s"\\]+\/incident-ack\/[A-Za-z0-9._~-]+/.exec(message)![0];
    const [firstPage] = await pagesOf(db, id);

    const { page, context, csp } = await newPage(browser);
    expect((await page.goto(link))?.status()).toBe(200);
    await clickButton(page, 'Work the incident in the console (signs you in for this incident)');
    // Signed in by the link: no API key asked for, straight onto the incident.
    expect(new URL(page.url()).pathname).toBe(`/console/incidents/${id}`);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toContain('Statement batch mailed');
    expect(await page.textContent('main')).toContain('for this incident only');
    expect(await page.textContent('#grade')).toContain('suggested relatively major');

    await clickButton(page, 'Acknowledge');
    const ackedAt = Date.now();
    expect(await page.getByRole('status').textContent()).toBe('Acknowledged. The escalation has stopped.');
    expect(await page.textContent('#incident-status')).toBe('acknowledged');
    await page.getByLabel('CN incident grade').selectOption('relatively-major');
    await clickButton(page, 'Confirm grade');
    expect(await page.textContent('#grade')).toContain(`confirmed relatively major (较大) by user:${responder.userId}`);
    await shoot(page, 'incident-by-link');

    // The session reaches nothing but this incident.
    await page.goto(`${api.url}/console`);
    expect(new URL(page.url()).pathname).toBe('/console/sign-in');
    expect(csp).toEqual([]);

    // The incident page with its grade and breach-notice forms (a key session) passes axe, in Chinese too.
    await expectAxeClean(browser, api.url, responder.key, [
      { path: `/console/incidents/${id}`, button: 'Send breach notices' },
      { path: `/console/incidents/${id}?lang=zh-CN`, button: '确认分级' },
    ]);

    // The escalation stopped: past the moment level 2 would have been paged, only level 1 was.
    expect(ackedAt).toBeLessThan(firstPage!.pagedAt.getTime() + LEVEL_WAIT_SECONDS * 1000);
    const level2Due = firstPage!.pagedAt.getTime() + LEVEL_WAIT_SECONDS * 1000 + 3000;
    await waitFor(async () => (Date.now() > level2Due ? true : undefined), 'the moment level 2 was due', 60_000);
    expect((await pagesOf(db, id)).map((p) => p.level)).toEqual([1]);
    await context.close();

    // The same link again, in a fresh browser: refused.
    const again = await newPage(browser);
    expect((await again.page.goto(link))?.status()).toBe(410);
    expect(await again.page.textContent('body')).toContain('This link has been used already.');
    // An expired link (the same page, signed with a past expiry): refused.
    const expired = `${api.url}/incident-ack/${incidentAckToken(services.keyring, {
      pageId: firstPage!.id,
      expiresAt: Date.now() - 1000,
    })}`;
    expect((await again.page.goto(expired))?.status()).toBe(410);
    expect(await again.page.textContent('body')).toContain('This link has expired.');
    await again.context.close();
  }, 150_000);
});
