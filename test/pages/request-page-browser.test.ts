import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestWorkflowId } from '../../domain/ids';
import type { RunningApi } from '../../runtime/app-server';
import { seedPrincipal } from '../helpers/api';
import { skipWithoutChromium } from '../helpers/browser';
import { insertSubject } from '../helpers/notifications';
import { callApi, startBrowserStack, type BrowserStack, type WebhookMessage } from '../helpers/browser-stack';
import type { TestServices } from '../helpers/services';
import { waitFor } from '../helpers/wait';

/**
 * The subject's request pages in a real headless Chromium with JavaScript disabled, against a real API server and
 * worker; links come from the real messages, delivered by the webhook channel to a local receiver. Without a
 * browser the file is skipped locally and fails in CI (as the consent page's).
 */
const SKIP = skipWithoutChromium('request page browser tests');

let services: TestServices;
let api: RunningApi;
let browser: Browser;
let stack: BrowserStack;
let ownerKey: string;
const messages: WebhookMessage[] = [];

const call = <T>(path: string, init: { method?: string; body?: unknown } = {}) =>
  callApi<T>(api.url, ownerKey, path, init);
const linkIn = (m: WebhookMessage, path: string) => new RegExp(`https?://\\S+/requests/${path}\\S+`).exec(m.text)?.[0];
const messageFor = (key: string) => waitFor(async () => messages.find((m) => m.idempotencyKey === key), key);

const openPage = async (): Promise<Page> => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  return context.newPage();
};

describe.skipIf(SKIP)('the subject’s request pages in headless Chromium, without JavaScript', () => {
  beforeAll(async () => {
    stack = await startBrowserStack({ onMessage: (body) => messages.push(JSON.parse(body) as WebhookMessage) });
    ({ services, api, browser } = stack);
    ({ key: ownerKey } = await seedPrincipal(services.database.db, 'owner'));
  }, 180_000);
  afterAll(() => stack?.stop());

  it('files a request through the form (zh-CN), confirms it through the emailed link, and shows the refusal with its reasons', async () => {
    const subjectId = await insertSubject(services.database.db, services.keyring, {
      locale: 'zh-CN',
      email: 'li.na@example.cn',
    });
    const form = await call<{ url: string }>('/v1/requests/form-links', { method: 'POST', body: { subjectId } });
    expect(form.status).toBe(200);
    const page = await openPage();
    const opened = await page.goto(form.body.url);
    expect(opened?.status()).toBe(200);
    expect(opened?.headers()['content-security-policy']).toContain("default-src 'none'");
    expect(await page.getAttribute('html', 'lang')).toBe('zh-CN');
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('提出关于您个人信息的请求');
    expect(await page.locator('script').count()).toBe(0);

    await page.getByLabel('查阅、复制我的个人信息').check();
    await page.getByLabel('具体说明（内容、涉及的记录、理由）').fill('请提供我在贵公司的全部个人信息');
    const [posted] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.getByRole('button', { name: '提交请求' }).click(),
    ]);
    expect(posted.status()).toBe(303);
    await page.waitForLoadState();
    expect(page.url()).toMatch(/\/requests\/[0-9a-f-]{36}\.\d+\.[A-Za-z0-9_-]{43}$/);
    const requestId = (await page.textContent('#request-id'))!.trim();
    const statusUrl = page.url();
    expect(await page.textContent('#request-status')).toBe('等待您确认身份（请查看我们发送的消息）');

    const verify = await messageFor(`${requestWorkflowId(requestId)}:subject-verify`);
    expect(verify.locale).toBe('zh-CN');
    const verifyLink = linkIn(verify, 'verify/');
    expect(verifyLink).toBeDefined();
    expect((await page.goto(verifyLink!))?.status()).toBe(200);
    const [confirmed] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.getByRole('button', { name: '是的，这是我提出的请求' }).click(),
    ]);
    expect(confirmed.status()).toBe(200);
    expect(await page.textContent('#verified')).toContain('正在处理');
    const detail = await call<{ status: string; verification: { method: string; by: string } }>(
      `/v1/requests/${requestId}`,
    );
    expect(detail.body).toMatchObject({
      status: 'open',
      verification: { method: 'link', by: `subject:${subjectId}` },
    });

    const refused = await call(`/v1/requests/${requestId}/refuse`, {
      method: 'POST',
      body: { reason: '同一请求已于上周答复' },
    });
    expect(refused.status).toBe(200);
    await messageFor(`${requestWorkflowId(requestId)}:subject-closed`);
    expect((await page.goto(statusUrl))?.status()).toBe(200);
    expect(await page.textContent('#request-status')).toBe('已拒绝');
    const answer = await page.textContent('#answer');
    expect(answer).toContain('同一请求已于上周答复');
    expect(answer).toContain('人民法院');

    // An altered link is refused as a page, not JSON.
    const altered = await page.goto(statusUrl.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')));
    expect(altered?.status()).toBe(403);
  });

  it('serves a link export once (en)', async () => {
    const subjectId = await insertSubject(services.database.db, services.keyring, {
      locale: 'en',
      email: 'sam@example.com',
    });
    const filed = await call<{ id: string }>('/v1/requests', {
      method: 'POST',
      body: {
        type: 'portability',
        subject: { id: subjectId },
        verification: { method: 'video-call', reference: 'call 7' },
      },
    });
    expect(filed.status).toBe(202);
    await waitFor(
      async () => ((await call(`/v1/requests/${filed.body.id}`)).status === 200 ? true : undefined),
      'filed',
    );
    expect(
      (await call(`/v1/requests/${filed.body.id}/fulfil`, { method: 'POST', body: { delivery: 'link' } })).status,
    ).toBe(200);
    const message = await messageFor(`${requestWorkflowId(filed.body.id)}:subject-closed`);
    const link = linkIn(message, 'exports/');
    expect(link).toBeDefined();
    const first = await fetch(link!);
    expect(first.status).toBe(200);
    expect(first.headers.get('content-disposition')).toContain('attachment');
    const exported = (await first.json()) as { json: { fields: { field: string; value: unknown }[] }; csv: string };
    expect(exported.json.fields.find((f) => f.field === 'email')?.value).toBe('sam@example.com');
    expect((await fetch(link!)).status).toBe(410);
  });
});
