import type { Worker } from '@temporalio/worker';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consentToken } from '../../activities/consents';
import { createApp } from '../../api/app';
import { auditLog, consents } from '../../db/schema';
import { consentWorkflowId } from '../../domain/ids';
import { bearer, readJson, seedPrincipal } from '../helpers/api';
import { insertNotice, insertSubject, NOTICE_TEXTS } from '../helpers/notifications';
import { createTestApp, createTestWorker, type TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';

let api: TestApp;
let worker: Worker;
let running: Promise<void>;
let ownerKey: string;
let enSubject: string;
let zhSubject: string;
let plainNotice: string;
let sensitiveNotice: string;

beforeAll(async () => {
  api = await createTestApp();
  worker = await createTestWorker(api);
  running = worker.run();
  ({ key: ownerKey } = await seedPrincipal(api.database.db, 'owner'));
  enSubject = await insertSubject(api.database.db, api.keyring, { locale: 'en', email: 'jane.doe@example.com' });
  zhSubject = await insertSubject(api.database.db, api.keyring, { locale: 'zh-CN', email: 'li.lei@example.cn' });
  plainNotice = await insertNotice(api.database.db);
  sensitiveNotice = await insertNotice(api.database.db, { purpose: 'credit-assessment' });
}, 120_000);
afterAll(async () => {
  worker?.shutdown();
  await running;
  await api?.close();
});

const start = async (o: Record<string, unknown> = {}) => {
  const res = await api.app.request('/v1/consents', {
    method: 'POST',
    headers: bearer(ownerKey),
    body: JSON.stringify({
      subjectId: enSubject,
      noticeId: plainNotice,
      channel: 'email',
      respondWithin: '60 seconds',
      remindEvery: '60 seconds',
      maxReminders: 0,
      validFor: 'P1D',
      ...o,
    }),
  });
  expect(res.status).toBe(202);
  return (await readJson<{ id: string }>(res)).id;
};
const row = async (id: string) => (await api.database.db.select().from(consents).where(eq(consents.id, id)))[0];
/** The consent's link as its message carries it: the token of its current round, expiring with the window. */
const linkOf = async (id: string, round = 1) => {
  const r = await waitFor(async () => {
    const current = await row(id);
    return current?.round === round ? current : undefined;
  }, `consent ${id} round ${round} recorded`);
  return `/consent/${consentToken(api.keyring, { consentId: id, round, expiresAt: r.respondBy.getTime() })}`;
};
const statusIs = (id: string, status: string, round = 1) =>
  waitFor(async () => {
    const r = await row(id);
    return r?.status === status && r.round === round ? r : undefined;
  }, `consent ${id} ${status}`);
const postForm = (app: TestApp['app'], path: string, form: string, type = 'application/x-www-form-urlencoded') =>
  app.request(path, { method: 'POST', headers: { 'content-type': type }, body: form });
/** A page: HTML (never JSON), with the page's headers and no script anywhere. */
const page = async (res: Response, status: number) => {
  const html = await res.text();
  expect(res.status, html.slice(0, 300)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  expect(res.headers.get('cache-control')).toBe('no-store');
  const csp = res.headers.get('content-security-policy') ?? '';
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("form-action 'self'");
  expect(csp).not.toContain('script-src');
  expect(csp).not.toContain('unsafe-inline');
  expect(html).toMatch(/^<!doctype html>/);
  expect(html).not.toMatch(/<script|javascript:|\son[a-z]+=/i);
  expect(html).not.toMatch(/ at .*\.ts:\d+/);
  return html;
};

describe('the consent page over HTTP', () => {
  it('shows the notice, the handler and Grant/Deny in the subject’s language; the grant is recorded as the subject', async () => {
    const id = await start();
    const link = await linkOf(id);
    const html = await page(await api.app.request(link), 200);
    expect(html).toContain('<html lang="en">');
    expect(html).toContain('Example Retail Ltd');
    expect(html).toContain('privacy@retail.example');
    expect(html).toContain('Old Retail Ltd');
    expect(html).toContain(NOTICE_TEXTS.en.body);
    expect(html).toContain('value="grant"');
    expect(html).toContain('value="deny"');
    expect(html).not.toContain('name="sensitive"');

    const done = await page(await postForm(api.app, link, 'action=grant'), 200);
    const granted = await statusIs(id, 'granted');
    const receiptId = (granted.receipt as { receipt: { receiptId: string } }).receipt.receiptId;
    expect(done).toContain(receiptId);
    expect(done).toContain('value="withdraw"');
    const [entry] = await api.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.targetId, id), eq(auditLog.action, 'consent.granted')));
    expect(entry).toMatchObject({ actor: `subject:${enSubject}`, apiKeyId: null, workflowId: consentWorkflowId(id) });
    expect(entry?.details).toMatchObject({ method: 'web-link', receiptId });

    // The same link later: the answer, its receipt and Withdraw; a second grant is a 409 page naming the state.
    const again = await page(await api.app.request(link), 200);
    expect(again).toContain(receiptId);
    expect(again).toContain('value="withdraw"');
    expect(again).not.toContain('value="grant"');
    expect(await page(await postForm(api.app, link, 'action=grant'), 409)).toContain('already granted');
    expect(await page(await postForm(api.app, link, 'action=deny'), 409)).toContain('already granted');

    expect(await page(await postForm(api.app, link, 'action=withdraw'), 200)).toContain('withdrawn');
    expect((await statusIs(id, 'withdrawn')).sensitiveDecision).toBeNull();
    expect(await page(await postForm(api.app, link, 'action=withdraw'), 409)).toContain('withdrawn');
  });

  it('asks separately for sensitive data: a grant needs the choice, the choice is recorded, a deny refuses both', async () => {
    const id = await start({ noticeId: sensitiveNotice, subjectId: zhSubject });
    const link = await linkOf(id);
    const html = await page(await api.app.request(link), 200);
    expect(html).toContain('<html lang="zh-CN">');
    expect(html).toContain('敏感个人信息');
    expect(html).toContain('信用评分');
    expect(html.match(/name="sensitive"[^>]*required/g)).toHaveLength(2);
    expect(html).toMatch(/value="deny"[^>]*formnovalidate/);

    expect(await page(await postForm(api.app, link, 'action=grant'), 400)).toContain('无法读取您的答复');
    expect((await row(id))?.status).toBe('requested');
    const done = await page(await postForm(api.app, link, 'action=grant&sensitive=yes'), 200);
    expect(done).toContain('您已单独同意');
    expect(await statusIs(id, 'granted')).toMatchObject({ sensitiveDecision: 'granted' });
    const sensitiveEntry = await api.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.targetId, id), eq(auditLog.action, 'consent.sensitive-given')));
    expect(sensitiveEntry).toHaveLength(1);

    const denied = await start({ noticeId: sensitiveNotice });
    const deniedLink = await linkOf(denied);
    // The radio sent along with Deny does not grant anything: a refusal refuses the sensitive processing too.
    expect(await page(await postForm(api.app, deniedLink, 'action=deny&sensitive=yes'), 200)).toContain('refusal');
    expect(await statusIs(denied, 'denied')).toMatchObject({ sensitiveDecision: 'refused' });
  });

  it('refuses a bad form with a 400 page and changes nothing', async () => {
    const id = await start();
    const link = await linkOf(id);
    for (const [form, type] of [
      ['action=grant&sensitive=yes', undefined], // no sensitive data in this notice
      ['action=approve', undefined],
      ['action=grant&action=deny', undefined],
      ['action=grant&extra=1', undefined],
      ['action=withdraw&sensitive=no', undefined],
      ['', undefined],
      ['{"action":"grant"}', 'application/json'],
    ] as const)
      await page(await postForm(api.app, link, form, type), 400);
    expect((await row(id))?.status).toBe('requested');
    const history = await api.temporal.workflow.getHandle(consentWorkflowId(id)).fetchHistory();
    expect(history.events?.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes)).toHaveLength(0);
  });

  it('refuses a malformed or altered token with a 403 page, in both languages', async () => {
    const id = await start();
    const link = await linkOf(id);
    const mac = link.slice(-43);
    const flipped = link.slice(0, -43) + (mac[0] === 'A' ? 'B' : 'A') + mac.slice(1);
    const otherRound = link.replace(`${id}.1.`, `${id}.2.`);
    for (const bad of [flipped, otherRound, `${link}x`, '/consent/not-a-token', `/consent/${id}`]) {
      const html = await page(await api.app.request(bad), 403);
      expect(html).toContain('链接无效');
      expect(html).toContain('This link is not valid');
      await page(await postForm(api.app, bad, 'action=grant'), 403);
    }
    expect((await row(id))?.status).toBe('requested');
  });

  it('shows 410 for an expired link, and for a link of an older round', async () => {
    const expired = await start({ respondWithin: '2 seconds' });
    const expiredLink = await linkOf(expired);
    await statusIs(expired, 'expired');
    expect(await page(await api.app.request(expiredLink), 410)).toContain('This link has expired');
    await page(await postForm(api.app, expiredLink, 'action=grant'), 410);

    const renewed = await start({ validFor: '2 seconds' });
    const first = await linkOf(renewed);
    await page(await postForm(api.app, first, 'action=grant'), 200);
    const second = await linkOf(renewed, 2);
    expect(await page(await api.app.request(first), 410)).toContain('replaced');
    await page(await postForm(api.app, first, 'action=withdraw'), 410);
    expect(await page(await api.app.request(second), 200)).toContain('value="grant"');
    await api.temporal.workflow.getHandle(consentWorkflowId(renewed)).terminate('test done');
  });

  it('keeps Withdraw on the link of a granted round after its answer window; a late grant is refused', async () => {
    const id = await start();
    const link = await linkOf(id);
    // The same services a day later: the link's answer window has passed.
    const later = createApp({ ...api, clock: () => new Date(Date.now() + 86_400_000) });
    expect(await page(await later.request(link), 410)).toContain('expired');
    await page(await postForm(later, link, 'action=grant'), 410);
    await page(await postForm(api.app, link, 'action=grant'), 200);
    expect(await page(await later.request(link), 200)).toContain('value="withdraw"');
    await page(await postForm(later, link, 'action=deny'), 410);
    expect(await page(await postForm(later, link, 'action=withdraw'), 200)).toContain('withdrawn');
    await statusIs(id, 'withdrawn');
  });
});
