import { eq } from 'drizzle-orm';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subjects } from '../../db/schema';
import type { RunningApi } from '../../runtime/app-server';
import { bearer, readJson, seedPrincipal } from '../helpers/api';
import { seedSubjects } from '../helpers/backups';
import { axeViolations, clickButton, newPage, shoot, signIn, skipWithoutChromium } from '../helpers/browser';
import { insertSubject } from '../helpers/notifications';
import { expectAxeClean, startBrowserStack, type BrowserStack } from '../helpers/browser-stack';
import type { TestServices } from '../helpers/services';
import { waitFor } from '../helpers/wait';

/**
 * The console's Destruction and Request pages in a real headless Chromium (JavaScript off) against a real API server
 * and worker: an approver gives the second approval in the browser and the certificate appears, verified; the
 * requester sees no Approve button and a forged approval with a valid token is refused (403); an owner works a
 * data-subject request. Each page passes axe-core (in a context allowed to inject it).
 */
const SKIP = skipWithoutChromium('console destruction and request browser tests');

let services: TestServices;
let api: RunningApi;
let browser: Browser;
let stack: BrowserStack;
type Principal = Awaited<ReturnType<typeof seedPrincipal>>;
let owner: Principal;
let approverA: Principal;
let approverB: Principal;

const call = async <T>(key: string, path: string, body?: unknown) => {
  const res = await fetch(`${api.url}/v1${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: bearer(key),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await readJson<T>(res) };
};
interface Destruction {
  status: string;
  approvals: { actor: string; decision: string }[];
  certificate: { id: string } | null;
}

describe.skipIf(SKIP)('console destruction and request pages in headless Chromium', () => {
  beforeAll(async () => {
    stack = await startBrowserStack();
    ({ services, api, browser } = stack);
    const { db } = services.database;
    owner = await seedPrincipal(db, 'owner', 'records owner');
    approverA = await seedPrincipal(db, 'approver', 'approver A');
    approverB = await seedPrincipal(db, 'approver', 'approver B');
  }, 180_000);
  afterAll(() => stack?.stop());

  it('an approver gives the second approval in the browser and the certificate appears; the requester has no button', async () => {
    const seeded = await seedSubjects(services.database, services.keyring, 4);
    await services.database.db.update(subjects).set({ legalHold: true }).where(eq(subjects.id, seeded.ids[3]!));
    // The shortest grace window the API takes (a duration is at least a second).
    const requested = await call<{ id: string; held: number }>(owner.key, '/destructions', {
      scope: { kind: 'subjects', subjectIds: seeded.ids },
      reason: 'branch closure: customer files past retention',
      approvalWindow: '10 minutes',
      graceWindow: '1 second',
    });
    expect(requested.status).toBe(202);
    expect(requested.body.held).toBe(1);
    const id = requested.body.id;
    await waitFor(async () => {
      const d = await call<Destruction>(owner.key, `/destructions/${id}`);
      return d.status === 200 ? true : undefined;
    }, 'the destruction recorded');
    const first = await call(approverA.key, `/destructions/${id}/approvals`, {
      decision: 'approve',
      comment: 'scope matches the closure list',
    });
    expect(first.status).toBe(200);

    // Approver B: Today lists it as waiting; the page shows the scope, the first approval and the form.
    const { page, context, csp } = await newPage(browser);
    await page.goto(`${api.url}/console`);
    await signIn(page, approverB.key);
    expect(await page.getByRole('heading', { name: 'Destructions waiting for approval' }).count()).toBe(1);
    await Promise.all([page.waitForLoadState(), page.getByRole('link', { name: 'Destructions' }).first().click()]);
    expect(new URL(page.url()).pathname).toBe('/console/destructions');
    await Promise.all([page.waitForLoadState(), page.locator(`a[href="/console/destructions/${id}"]`).first().click()]);
    expect(new URL(page.url()).pathname).toBe(`/console/destructions/${id}`);
    expect(await page.textContent('#scope-targeted')).toBe('3');
    expect(await page.textContent('#scope-held')).toBe('1');
    expect(await page.textContent('#destruction-reason')).toBe('branch closure: customer files past retention');
    expect(await page.textContent('#approval-list')).toContain('scope matches the closure list');
    expect(await page.locator('script').count()).toBe(0);
    await shoot(page, 'destruction');

    await page.getByLabel('Comment').fill('checked against the retention schedule');
    await clickButton(page, 'Approve');
    expect(await page.getByRole('status').textContent()).toBe('Approval recorded.');
    expect(await page.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    const certificateId = await waitFor(
      async () => {
        await page.reload();
        return (await page.locator('#certificate-id').count()) ? await page.textContent('#certificate-id') : undefined;
      },
      'the certificate on the page',
      60_000,
    );
    const done = await call<Destruction>(owner.key, `/destructions/${id}`);
    expect(done.body.status).toBe('completed');
    expect(certificateId?.trim()).toBe(done.body.certificate!.id);
    expect(done.body.approvals.map((a) => a.actor)).toEqual([`user:${approverA.userId}`, `user:${approverB.userId}`]);
    expect(csp).toEqual([]);
    await context.close();

    // The requester: no Approve button, the certificate with the verify route's verdict, and the page passes axe.
    const requester = await newPage(browser, { axe: true });
    await requester.page.goto(`${api.url}/console/destructions/${id}`);
    await signIn(requester.page, owner.key);
    expect(new URL(requester.page.url()).pathname).toBe(`/console/destructions/${id}`);
    expect(await requester.page.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    expect(await requester.page.textContent('#certificate-verification')).toBe(
      'Valid: signature, digest and audit-chain entry all check out.',
    );
    expect(await axeViolations(requester.page)).toEqual([]);
    await requester.page.goto(`${api.url}/console/destructions?lang=zh-CN`);
    expect(await axeViolations(requester.page)).toEqual([]);
    await requester.context.close();
  }, 120_000);

  it('the requester’s forged approval with a valid CSRF token is refused (403); the approver’s page passes axe', async () => {
    const seeded = await seedSubjects(services.database, services.keyring, 2);
    const requested = await call<{ id: string }>(owner.key, '/destructions', {
      scope: { kind: 'subjects', subjectIds: seeded.ids },
      reason: 'duplicate customer records merged',
      approvalWindow: '10 minutes',
      graceWindow: '1 second',
    });
    const id = requested.body.id;
    await waitFor(
      async () => ((await call(owner.key, `/destructions/${id}`)).status === 200 ? true : undefined),
      'recorded',
    );

    const { page, context } = await newPage(browser);
    await page.goto(`${api.url}/console/destructions/${id}`);
    await signIn(page, owner.key);
    expect(await page.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Reject' }).count()).toBe(0);
    const csrf = await page.locator('input[name="_csrf"]').first().getAttribute('value');
    expect(csrf).toBeTruthy();
    const forged = await context.request.post(`${api.url}/console/destructions/${id}/approvals`, {
      form: { _csrf: csrf!, decision: 'approve', comment: 'approving my own request' },
      maxRedirects: 0,
    });
    expect(forged.status()).toBe(403);
    expect((await call<Destruction>(owner.key, `/destructions/${id}`)).body.approvals).toEqual([]);
    await context.close();

    await expectAxeClean(browser, api.url, approverA.key, [
      { path: `/console/destructions/${id}`, button: 'Approve' },
      { path: `/console/destructions/${id}?lang=zh-CN`, button: '批准' },
    ]);
  }, 120_000);

  it('an owner verifies a request’s identity and adds a note in the browser; the Request pages pass axe', async () => {
    const subjectId = await insertSubject(services.database.db, services.keyring, { locale: 'en' });
    const filed = await call<{ id: string }>(owner.key, '/requests', {
      type: 'access',
      subject: { id: subjectId },
      clock: { window: 'P15D' },
    });
    expect(filed.status).toBe(202);
    const id = filed.body.id;
    await waitFor(async () => {
      const r = await call<{ status: string }>(owner.key, `/requests/${id}`);
      return r.body.status === 'verifying' ? true : undefined;
    }, 'the request verifying');

    const { page, context } = await newPage(browser, { axe: true });
    await page.goto(`${api.url}/console`);
    await signIn(page, owner.key);
    expect(await page.getByRole('heading', { name: 'Requests due or late' }).count()).toBe(1);
    await Promise.all([page.waitForLoadState(), page.locator(`a[href="/console/requests/${id}"]`).first().click()]);
    expect(await page.textContent('#request-verification')).toBe('not verified yet');
    expect(await axeViolations(page)).toEqual([]);

    await page.getByLabel('Method').selectOption('video-call');
    await page.getByLabel('Reference (how it was checked)').fill('video call, ID card shown');
    await clickButton(page, 'Record verification');
    expect(await page.getByRole('status').textContent()).toBe('Verification recorded.');
    expect(await page.textContent('#request-status')).toBe('open');
    await page.getByLabel('Note', { exact: true }).fill('collecting the statement archive');
    await clickButton(page, 'Add note');
    expect(await page.textContent('#timeline-list')).toContain('collecting the statement archive');
    expect(await axeViolations(page)).toEqual([]);
    await shoot(page, 'request');
    await page.goto(`${api.url}/console/requests?lang=zh-CN`);
    expect(await axeViolations(page)).toEqual([]);
    await page.goto(`${api.url}/console/requests/${id}`);
    expect(await page.getAttribute('html', 'lang')).toBe('zh-CN');
    expect(await axeViolations(page)).toEqual([]);
    await context.close();
  }, 120_000);
});
