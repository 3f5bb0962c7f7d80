import type { Worker } from '@temporalio/worker';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyReceipt } from '../../activities/consent-receipts';
import { auditLog, notifications } from '../../db/schema';
import { consentWorkflowId } from '../../domain/ids';
import { grantUpdate } from '../../workflows/consent';
import { bearer, readJson, seedPrincipal, type Problem } from '../helpers/api';
import { insertNotice, insertSubject } from '../helpers/notifications';
import { createTestApp, createTestWorker, type TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';

interface Consent {
  id: string;
  status: string;
  round: number;
  sensitiveCategories: string[];
  sensitiveDecision: string | null;
  history: { type: string; round: number }[];
  receipt: { keyId: string; receipt: { receiptId: string } } | null;
}
interface Decided {
  status: string;
  sensitive?: string;
  receipt: { keyId: string; receipt: { receiptId: string; events: { type: string }[] } };
}

let api: TestApp;
let worker: Worker;
let running: Promise<void>;
let ownerKey: string;
let auditorKey: string;
let subjectId: string;
let noticeId: string;
let sensitiveNoticeId: string;

beforeAll(async () => {
  api = await createTestApp();
  worker = await createTestWorker(api);
  running = worker.run();
  ({ key: ownerKey } = await seedPrincipal(api.database.db, 'owner'));
  ({ key: auditorKey } = await seedPrincipal(api.database.db, 'auditor'));
  subjectId = await insertSubject(api.database.db, api.keyring, { locale: 'zh-CN', email: 'li.lei@example.cn' });
  noticeId = await insertNotice(api.database.db);
  sensitiveNoticeId = await insertNotice(api.database.db, { purpose: 'credit-assessment' });
}, 120_000);
afterAll(async () => {
  worker?.shutdown();
  await running;
  await api?.close();
});

const request = (o: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  api.app.request('/v1/consents', {
    method: 'POST',
    headers: { ...bearer(ownerKey), ...headers },
    body: JSON.stringify({
      subjectId,
      noticeId,
      channel: 'email',
      respondWithin: '60 seconds',
      remindEvery: '1 second',
      maxReminders: 10,
      validFor: 'P1D',
      ...o,
    }),
  });
const start = async (o: Record<string, unknown> = {}) => {
  const res = await request(o);
  expect(res.status).toBe(202);
  return (await readJson<{ id: string }>(res)).id;
};
const get = async (id: string) =>
  readJson<Consent>(await api.app.request(`/v1/consents/${id}`, { headers: bearer(ownerKey) }));
const post = (path: string, body?: unknown) =>
  api.app.request(path, {
    method: 'POST',
    headers: bearer(ownerKey),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
const decide = (id: string, decision: 'grant' | 'deny', sensitive?: boolean) =>
  post(`/v1/consents/${id}/decisions`, { decision, ...(sensitive === undefined ? {} : { sensitive }) });
const sent = async (id: string, template: string) =>
  (
    await api.database.db
      .select()
      .from(notifications)
      .where(and(eq(notifications.workflowId, consentWorkflowId(id)), eq(notifications.template, template)))
  ).length;
const statusIs = (id: string, status: string, round = 1) =>
  waitFor(async () => {
    const c = await get(id);
    return c.status === status && c.round === round ? c : undefined;
  }, `consent ${id} ${status} (round ${round})`);
const conflict = async (res: Response, code: string) => {
  expect(res.status).toBe(409);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  expect((await readJson<Problem>(res)).code).toBe(code);
};

describe('consent workflow over the API', () => {
  it('reminds at the interval until granted, then stops; the receipt verifies; a second grant is refused', async () => {
    const id = await start();
    await statusIs(id, 'requested');
    await waitFor(async () => ((await sent(id, 'consent-request')) === 1 ? true : undefined), 'the request');
    await waitFor(async () => ((await sent(id, 'consent-reminder')) >= 2 ? true : undefined), 'two reminders');

    const res = await decide(id, 'grant');
    expect(res.status).toBe(200);
    const decided = await readJson<Decided>(res);
    expect(decided.status).toBe('granted');
    expect(decided.receipt.keyId).toBe(api.keyring.signing.keyId);
    expect(decided.receipt.receipt.events.map((e) => e.type)).toEqual(['requested', 'given']);
    expect(verifyReceipt(decided.receipt, api.keyring.signing.publicKey)).toMatchObject({ valid: true });

    const receipt = await api.app.request(`/v1/consents/${id}/receipt`, { headers: bearer(auditorKey) });
    expect(receipt.status).toBe(200);
    expect(await readJson<Decided['receipt']>(receipt)).toEqual(decided.receipt);

    // At the interval: the request and the reminders are about a second apart (never sooner).
    const times = (
      await api.database.db
        .select({ at: notifications.createdAt })
        .from(notifications)
        .where(eq(notifications.workflowId, consentWorkflowId(id)))
    )
      .map((r) => r.at.getTime())
      .sort((a, b) => a - b);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps.length).toBeGreaterThanOrEqual(2);
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(900);
    for (const gap of gaps) expect(gap).toBeLessThan(5_000);
    // A negative claim needs time to pass: more than two intervals with no further reminder.
    const reminders = await sent(id, 'consent-reminder');
    await new Promise((r) => setTimeout(r, 2_500));
    expect(await sent(id, 'consent-reminder')).toBe(reminders);

    const before = await get(id);
    await conflict(await decide(id, 'grant'), 'consent-granted');
    await conflict(await decide(id, 'deny'), 'consent-granted');
    expect(await get(id)).toEqual(before);
    expect(before.receipt?.receipt.receiptId).toBe(decided.receipt.receipt.receiptId);
    // The validator refused them before acceptance: the history holds the one accepted update.
    const history = await api.temporal.workflow.getHandle(consentWorkflowId(id)).fetchHistory();
    const updates = (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
    expect(updates).toHaveLength(1);
  });

  it('expires an unanswered request after its window; a decision after expiry is refused', async () => {
    const id = await start({ respondWithin: 'PT3S', remindEvery: '1 second', maxReminders: 1 });
    const expired = await statusIs(id, 'expired');
    expect(await sent(id, 'consent-reminder')).toBe(1);
    expect(expired.history.map((e) => e.type)).toEqual(['requested', 'expired']);
    await conflict(await decide(id, 'grant'), 'consent-expired');
    await conflict(await post(`/v1/consents/${id}/withdraw`), 'consent-expired');
    expect(await get(id)).toEqual(expired);
    const receipt = await api.app.request(`/v1/consents/${id}/receipt`, { headers: bearer(ownerKey) });
    expect(receipt.status).toBe(404);
  });

  it('records a refusal with a receipt and ends', async () => {
    const id = await start();
    await statusIs(id, 'requested');
    const res = await decide(id, 'deny');
    expect(res.status).toBe(200);
    const denied = await readJson<Decided>(res);
    expect(denied.receipt.receipt.events.map((e) => e.type)).toEqual(['requested', 'refused']);
    await api.temporal.workflow.getHandle(consentWorkflowId(id)).result();
    await conflict(await decide(id, 'grant'), 'consent-denied');
  });

  it('withdrawal restricts the purpose, is audited with workflow and run IDs; a second one is refused', async () => {
    const id = await start();
    await statusIs(id, 'requested');
    await conflict(await post(`/v1/consents/${id}/withdraw`), 'consent-not-granted');
    expect((await decide(id, 'grant')).status).toBe(200);

    const res = await post(`/v1/consents/${id}/withdraw`);
    expect(res.status).toBe(200);
    expect((await readJson<{ status: string }>(res)).status).toBe('withdrawn');
    const withdrawn = await get(id);
    expect(withdrawn.status).toBe('withdrawn');

    const perSubject = await api.app.request(`/v1/subjects/${subjectId}/consents`, { headers: bearer(auditorKey) });
    expect(perSubject.status).toBe(200);
    const { purposes } = await readJson<{ purposes: { purpose: string; consentId: string; restricted: boolean }[] }>(
      perSubject,
    );
    expect(purposes).toEqual([expect.objectContaining({ purpose: 'marketing', consentId: id, restricted: true })]);

    const [entry] = await api.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.targetId, id), eq(auditLog.action, 'consent.withdrawn')));
    expect(entry?.workflowId).toBe(consentWorkflowId(id));
    expect(entry?.runId).toMatch(/^[0-9a-f-]{36}$/);
    expect(entry?.apiKeyId).toBeTruthy();
    const entries = await api.database.db.select().from(auditLog).where(eq(auditLog.targetId, id));
    expect(entries.map((e) => e.action).sort()).toEqual([
      'consent.granted',
      'consent.request-recorded',
      'consent.requested',
      'consent.withdrawn',
    ]);
    expect(JSON.stringify(entries)).not.toContain('li.lei');

    await conflict(await post(`/v1/consents/${id}/withdraw`), 'consent-withdrawn');
    expect(await get(id)).toEqual(withdrawn);
  });

  it('renews a grant when its validity ends (continue-as-new, the next round)', async () => {
    const id = await start({ validFor: '2 seconds' });
    await statusIs(id, 'requested');
    expect((await decide(id, 'grant')).status).toBe(200);
    const renewed = await statusIs(id, 'requested', 2);
    expect(renewed.history.map((e) => `${e.round}:${e.type}`)).toEqual(['1:requested', '1:granted', '2:renewed']);
    await waitFor(async () => ((await sent(id, 'consent-request')) === 2 ? true : undefined), 'the renewal request');
    await api.temporal.workflow.getHandle(consentWorkflowId(id)).terminate('test done');
  });

  it('asks separately for sensitive data: its own answer, event and receipt entry; a withdrawal withdraws both', async () => {
    const plain = await start();
    const id = await start({ noticeId: sensitiveNoticeId });
    await statusIs(plain, 'requested');
    const requested = await statusIs(id, 'requested');
    expect(requested.sensitiveCategories).toContain('creditScore');
    expect(requested.sensitiveDecision).toBeNull();

    const badSensitive = async (res: Response) => {
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect((await readJson<Problem>(res)).fields?.map((f) => f.path)).toEqual(['sensitive']);
    };
    await badSensitive(await decide(plain, 'grant', true));
    await badSensitive(await decide(plain, 'deny', false));
    await badSensitive(await decide(id, 'grant'));
    await badSensitive(await decide(id, 'deny', true));
    expect(await get(id)).toEqual(requested);
    // The workflow's validator refuses the same answers (the API's check is only the first): none was accepted.
    const handle = api.temporal.workflow.getHandle(consentWorkflowId(id));
    const accepted = async () =>
      ((await handle.fetchHistory()).events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes)
        .length;
    expect(await accepted()).toBe(0);
    await expect(
      handle.executeUpdate(grantUpdate, { args: [{ actor: 'test', method: 'on-behalf' }] }),
    ).rejects.toMatchObject({ cause: { type: 'sensitive-choice' } });
    expect(await accepted()).toBe(0);

    const res = await decide(id, 'grant', true);
    expect(res.status).toBe(200);
    const decided = await readJson<Decided>(res);
    expect(decided).toMatchObject({ status: 'granted', sensitive: 'granted' });
    expect(decided.receipt.receipt.events.map((e) => e.type)).toEqual(['requested', 'given', 'sensitive-given']);
    expect(verifyReceipt(decided.receipt, api.keyring.signing.publicKey)).toMatchObject({ valid: true });
    const granted = await get(id);
    expect(granted.sensitiveDecision).toBe('granted');
    expect(granted.history.map((e) => e.type)).toEqual(['requested', 'granted', 'sensitive-given']);

    expect((await post(`/v1/consents/${id}/withdraw`)).status).toBe(200);
    expect(await get(id)).toMatchObject({ status: 'withdrawn', sensitiveDecision: null });

    const partial = await start({ noticeId: sensitiveNoticeId });
    await statusIs(partial, 'requested');
    const partly = await readJson<Decided>(await decide(partial, 'grant', false));
    expect(partly).toMatchObject({ status: 'granted', sensitive: 'refused' });
    expect(partly.receipt.receipt.events.map((e) => e.type)).toEqual(['requested', 'given', 'sensitive-refused']);
    expect((await get(partial)).sensitiveDecision).toBe('refused');

    const plainGrant = await readJson<Decided>(await decide(plain, 'grant'));
    expect(plainGrant.sensitive).toBeUndefined();
    expect((await get(plain)).sensitiveDecision).toBeNull();
  });

  it('honours Idempotency-Key on POST /v1/consents', async () => {
    const key = { 'idempotency-key': `consent-${Date.now()}` };
    const first = await request({}, key);
    expect(first.status).toBe(202);
    const again = await request({}, key);
    expect(again.status).toBe(200);
    expect((await readJson<{ id: string }>(again)).id).toBe((await readJson<{ id: string }>(first)).id);
    await conflict(await request({ maxReminders: 3 }, key), 'idempotency-key-reused');
  });

  it('refuses unknown subjects and notices, bad durations and other roles', async () => {
    expect((await request({ noticeId: crypto.randomUUID() })).status).toBe(404);
    expect((await request({ subjectId: crypto.randomUUID() })).status).toBe(404);
    expect((await request({ respondWithin: 'P1M' })).status).toBe(400);
    const res = await api.app.request('/v1/consents', { method: 'POST', headers: bearer(auditorKey), body: '{}' });
    expect(res.status).toBe(403);
    expect((await api.app.request(`/v1/consents/${crypto.randomUUID()}`, { headers: bearer(ownerKey) })).status).toBe(
      404,
    );
  });
});
