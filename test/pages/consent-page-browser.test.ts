import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consentWorkflowId } from '../../domain/ids';
import type { RunningApi } from '../../runtime/app-server';
import { seedPrincipal } from '../helpers/api';
import { skipWithoutChromium } from '../helpers/browser';
import { insertNotice, insertSubject, NOTICE_TEXTS } from '../helpers/notifications';
import { callApi, startBrowserStack, type BrowserStack, type WebhookMessage } from '../helpers/browser-stack';
import type { TestServices } from '../helpers/services';
import { waitFor } from '../helpers/wait';

/**
 * The consent page in a real headless Chromium (Debian's `chromium`, driven by playwright-core) with
 * JavaScript disabled, against a real API server and worker; the link comes from the real message, delivered
 * by the webhook channel to a local receiver. Without a browser the file is skipped locally and fails in CI.
 */
const SKIP = skipWithoutChromium('consent page browser tests');

/** The browser's own, inside evaluate (the project's types have no DOM). */
declare const getComputedStyle: (element: unknown) => { backgroundColor: string };

let services: TestServices;
let api: RunningApi;
let browser: Browser;
let stack: BrowserStack;
let ownerKey: string;
const messages: WebhookMessage[] = [];

/** The API over a real socket, as an operator's client calls it. */
const call = <T>(path: string, init: { method?: string; body?: unknown } = {}) =>
  callApi<T>(api.url, ownerKey, path, init);

/** Starts a consent through the API and returns its ID and the link its request message carries. */
const requestConsent = async (o: { subjectId: string; noticeId: string; respondWithin?: string }) => {
  const started = await call<{ id: string }>('/v1/consents', {
    method: 'POST',
    body: {
      channel: 'email',
      respondWithin: '120 seconds',
      remindEvery: '120 seconds',
      maxReminders: 0,
      validFor: 'P1D',
      ...o,
    },
  });
  expect(started.status).toBe(202);
  const id = started.body.id;
  const message = await waitFor(
    async () => messages.find((m) => m.idempotencyKey === `${consentWorkflowId(id)}:round-1:request`),
    'the consent request message',
  );
  const link = /https?:\/\/\S+\/consent\/\S+/.exec(message.text)?.[0];
  expect(link?.startsWith(`${api.url}/consent/`)).toBe(true);
  return { id, link: link!, message };
};

const consentOf = async (id: string) =>
  (await call<{ status: string; sensitiveDecision: string | null }>(`/v1/consents/${id}`)).body;

/** A fresh browser context with JavaScript off; CSP violations the console reports are collected. */
const openPage = async (): Promise<{ page: Page; context: BrowserContext; violations: string[] }> => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  const violations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  return { page, context, violations };
};

/** Clicks a submit button and returns the status of the POST it sent. */
const submit = async (page: Page, button: string) => {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.getByRole('button', { name: button, exact: true }).click(),
  ]);
  await page.waitForLoadState();
  return response.status();
};

describe.skipIf(SKIP)('the consent page in headless Chromium, without JavaScript', () => {
  beforeAll(async () => {
    stack = await startBrowserStack({ onMessage: (body) => messages.push(JSON.parse(body) as WebhookMessage) });
    ({ services, api, browser } = stack);
    ({ key: ownerKey } = await seedPrincipal(services.database.db, 'owner'));
  }, 180_000);
  afterAll(() => stack?.stop());

  it('grants through the button (with the separate sensitive choice): a verifiable receipt; Withdraw on the same link ends it', async () => {
    const subjectId = await insertSubject(services.database.db, services.keyring, {
      locale: 'en',
      email: 'jane.doe@example.com',
    });
    const noticeId = await insertNotice(services.database.db, { purpose: 'credit-assessment' });
    const { id, link, message } = await requestConsent({ subjectId, noticeId });
    expect(message.locale).toBe('en');
    const { page, context, violations } = await openPage();

    const opened = await page.goto(link);
    expect(opened?.status()).toBe(200);
    expect(opened?.headers()['referrer-policy']).toBe('no-referrer');
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(NOTICE_TEXTS.en.title);
    const body = await page.textContent('body');
    expect(body).toContain('Example Retail Ltd');
    expect(body).toContain('privacy@retail.example');
    expect(body).toContain(NOTICE_TEXTS.en.body);
    expect(body).toContain('credit score');
    expect(await page.locator('script').count()).toBe(0);
    // The style passed the CSP (allowed by its hash): the primary button is green.
    expect(await page.locator('button.primary').evaluate((b) => getComputedStyle(b).backgroundColor)).toBe(
      'rgb(29, 92, 58)',
    );

    // Grant without the sensitive choice: the browser's own validation keeps the form from being sent.
    const posts: string[] = [];
    page.on('request', (r) => void (r.method() === 'POST' && posts.push(r.url())));
    await page.getByRole('button', { name: 'Grant consent', exact: true }).click();
    expect(posts).toEqual([]);
    expect((await consentOf(id)).status).toBe('requested');

    await page.getByLabel('I consent to the processing of my sensitive personal information for this purpose').check();
    expect(await submit(page, 'Grant consent')).toBe(200);
    expect(await page.textContent('body')).toContain('Thank you: your consent is recorded.');
    const receiptId = (await page.textContent('#receipt-id'))?.trim();
    expect(receiptId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await consentOf(id)).toMatchObject({ status: 'granted', sensitiveDecision: 'granted' });

    const receipt = await call<{ receipt: { receiptId: string; events: { type: string }[] } }>(
      `/v1/consents/${id}/receipt`,
    );
    expect(receipt.status).toBe(200);
    expect(receipt.body.receipt.receiptId).toBe(receiptId);
    expect(receipt.body.receipt.events.map((e) => e.type)).toEqual(['requested', 'given', 'sensitive-given']);
    const verified = await call<{ valid: boolean; checkedWith: string }>('/v1/receipts/verify', {
      method: 'POST',
      body: receipt.body,
    });
    expect(verified.body).toMatchObject({ valid: true, checkedWith: 'given' });

    // The same link again: the answer and Withdraw.
    expect((await page.goto(link))?.status()).toBe(200);
    expect(await page.textContent('#receipt-id')).toBe(receiptId);
    expect(await page.getByRole('button', { name: 'Grant consent' }).count()).toBe(0);
    expect(await submit(page, 'Withdraw consent')).toBe(200);
    expect(await page.textContent('body')).toContain('Your consent is withdrawn.');
    expect(await consentOf(id)).toMatchObject({ status: 'withdrawn', sensitiveDecision: null });
    await services.temporal.workflow.getHandle(consentWorkflowId(id)).result();

    // A second click on an old tab's Withdraw is refused with a page naming the state.
    expect((await page.goto(link))?.status()).toBe(200);
    expect(await page.getByRole('button', { name: 'Withdraw consent' }).count()).toBe(0);
    expect(violations).toEqual([]);
    await context.close();
  });

  it('speaks Chinese to a zh-CN subject; Deny records the refusal with its receipt', async () => {
    const subjectId = await insertSubject(services.database.db, services.keyring, {
      locale: 'zh-CN',
      email: 'li.lei@example.cn',
    });
    const noticeId = await insertNotice(services.database.db);
    const { id, link, message } = await requestConsent({ subjectId, noticeId });
    expect(message.locale).toBe('zh-CN');
    const { page, context } = await openPage();
    expect((await page.goto(link))?.status()).toBe(200);
    expect(await page.getAttribute('html', 'lang')).toBe('zh-CN');
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(NOTICE_TEXTS['zh-CN'].title);
    expect(await page.textContent('body')).toContain(NOTICE_TEXTS['zh-CN'].body);
    expect(await page.getByRole('button', { name: '同意', exact: true }).count()).toBe(1);
    expect(await page.getByLabel('我同意为此目的处理我的敏感个人信息').count()).toBe(0);

    expect(await submit(page, '拒绝')).toBe(200);
    expect(await page.textContent('body')).toContain('谢谢，您的拒绝已记录。');
    const receiptId = (await page.textContent('#receipt-id'))?.trim();
    const receipt = await call<{ receipt: { receiptId: string } }>(`/v1/consents/${id}/receipt`);
    expect(receipt.body.receipt.receiptId).toBe(receiptId);
    expect((await consentOf(id)).status).toBe('denied');
    await context.close();
  });

  it('shows a clear page for an altered link (403) and an expired one (410)', async () => {
    const subjectId = await insertSubject(services.database.db, services.keyring, {
      locale: 'en',
      email: 'late@example.com',
    });
    const noticeId = await insertNotice(services.database.db);
    const { id, link } = await requestConsent({ subjectId, noticeId, respondWithin: '2 seconds' });
    const { page, context } = await openPage();

    const mac = link.slice(-43);
    const altered = link.slice(0, -43) + (mac[0] === 'A' ? 'B' : 'A') + mac.slice(1);
    const refused = await page.goto(altered);
    expect(refused?.status()).toBe(403);
    expect(await page.getByRole('heading', { name: 'This link is not valid' }).count()).toBe(1);
    expect(await page.getByRole('heading', { name: '链接无效' }).count()).toBe(1);
    expect(await page.getByRole('button').count()).toBe(0);

    await waitFor(async () => ((await consentOf(id)).status === 'expired' ? true : undefined), 'the request expired');
    const expired = await page.goto(link);
    expect(expired?.status()).toBe(410);
    expect(await page.getByRole('heading', { name: 'This link has expired' }).count()).toBe(1);
    expect(await page.getByRole('button').count()).toBe(0);
    await context.close();
  });
});
