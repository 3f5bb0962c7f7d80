import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLog, subjects } from '../../db/schema';
import { bearer, readJson, seedPrincipal } from '../helpers/api';
import { insertSubject } from '../helpers/notifications';
import { startTestApp } from '../helpers/running-app';
import type { TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';
import { request, signIn } from './session';

/** The Request pages through app.request: roles, CSRF, and each form taking effect through the API's own actions. */
let api: TestApp;
let stop: () => Promise<void>;
type Principal = Awaited<ReturnType<typeof seedPrincipal>>;
let owner: Principal;
let auditor: Principal;
let approver: Principal;

beforeAll(async () => {
  ({ api, stop } = await startTestApp());
  const { db } = api.database;
  owner = await seedPrincipal(db, 'owner');
  auditor = await seedPrincipal(db, 'auditor');
  approver = await seedPrincipal(db, 'approver');
}, 120_000);
afterAll(() => stop?.());

interface Detail {
  status: string;
  verification: { method: string; by: string } | null;
  clock: { extensionMs: number };
  timeline: { type: string; details: Record<string, unknown>; text?: string | null }[];
}
const detail = async (id: string) =>
  readJson<Detail>(await api.app.request(`/v1/requests/${id}`, { headers: bearer(owner.key) }));
const statusIs = (id: string, status: string) =>
  waitFor(async () => {
    const d = (await api.app.request(`/v1/requests/${id}`, { headers: bearer(owner.key) })).ok
      ? await detail(id)
      : undefined;
    return d?.status === status ? d : undefined;
  }, `request ${id} ${status}`);

/** An access request filed through the API for a subject of `jurisdiction`, identity not verified yet. */
const fileRequest = async (jurisdiction: 'EU' | 'CN') => {
  const { db } = api.database;
  const subjectId = await insertSubject(db, api.keyring, { locale: 'en', email: 'jo@example.com' });
  await db.update(subjects).set({ jurisdiction }).where(eq(subjects.id, subjectId));
  const res = await api.app.request('/v1/requests', {
    method: 'POST',
    headers: bearer(owner.key),
    body: JSON.stringify({ type: 'access', subject: { id: subjectId }, clock: { window: '600 seconds' } }),
  });
  expect(res.status).toBe(202);
  const { id } = await readJson<{ id: string }>(res);
  await statusIs(id, 'verifying');
  return id;
};

describe('console: request pages', () => {
  it('an owner verifies, notes, extends and fulfils a request in the console, by the API’s own actions', async () => {
    const id = await fileRequest('EU');
    const o = await signIn(api, owner.key);
    const post = (action: string, form: Record<string, string>) =>
      request(api, o.jar, `/console/requests/${id}/${action}`, { form: { _csrf: o.csrf, ...form } });

    // Today and the list link to it (due first); the page shows the deadline and the verification state.
    expect(await (await request(api, o.jar, '/console')).text()).toContain(`/console/requests/${id}`);
    expect(await (await request(api, o.jar, '/console/requests')).text()).toContain(`/console/requests/${id}`);
    let html = await (await request(api, o.jar, `/console/requests/${id}`)).text();
    expect(html).toMatch(/id="request-status">verifying</);
    expect(html).toContain('not verified yet');
    expect(html).toMatch(/id="request-time-left"><span>(9m|10m)/);
    expect(html).toContain('Record verification');

    // Without the token: 403, nothing done. A bad form: 400 naming the field.
    expect((await request(api, o.jar, `/console/requests/${id}/notes`, { form: { text: 'forged note' } })).status).toBe(
      403,
    );
    const bad = await post('verify', { method: 'carrier-pigeon', reference: 'x' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('method');

    const verified = await post('verify', { method: 'in-person-id', reference: 'passport seen at branch 3' });
    expect(verified.headers.get('location')).toBe(`/console/requests/${id}?done=verified`);
    let d = await statusIs(id, 'open');
    expect(d.verification).toMatchObject({ method: 'in-person-id', by: `user:${owner.userId}` });

    expect((await post('notes', { text: 'archive search started' })).status).toBe(303);
    expect((await post('extend', { by: '60 seconds', reason: 'the archive is on tape' })).status).toBe(303);
    d = await detail(id);
    expect(d.clock.extensionMs).toBe(60_000);
    expect(d.timeline.find((e) => e.type === 'note')).toMatchObject({ text: 'archive search started' });
    expect(d.timeline.find((e) => e.type === 'verified')!.details).toMatchObject({ via: 'console' });
    html = await (await request(api, o.jar, `/console/requests/${id}?done=extended`)).text();
    expect(html).toContain('Deadline extended; the subject is told.');
    expect(html).toContain('archive search started');
    expect(html).not.toContain('Extend deadline');

    // Without the delivery an access request needs: 400 naming it, nothing done.
    const undelivered = await post('fulfil', {});
    expect(undelivered.status).toBe(400);
    expect(await undelivered.text()).toContain('delivery');
    expect((await detail(id)).status).toBe('open');

    // Fulfilled with a password export: the one-time password is on this response only.
    const fulfilled = await post('fulfil', { delivery: 'password' });
    expect(fulfilled.status).toBe(200);
    const page = await fulfilled.text();
    const password = /id="export-password">([A-Z2-9]{24})</.exec(page)?.[1];
    expect(password).toBeDefined();
    expect((await detail(id)).status).toBe('fulfilled');
    html = await (await request(api, o.jar, `/console/requests/${id}`)).text();
    expect(html).not.toContain(password!);
    expect(html).toContain('The request is closed.');

    // The console's reads of the request are audited as the API's are.
    const reads = await api.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, 'request.viewed'), eq(auditLog.targetId, id)));
    expect(reads.filter((e) => e.actor === `user:${owner.userId}`).length).toBeGreaterThanOrEqual(4);
  }, 120_000);

  it('refuses with a reason (required); an auditor reads without forms and is refused (403); an approver cannot list', async () => {
    const id = await fileRequest('CN');
    const o = await signIn(api, owner.key);
    const html = await (await request(api, o.jar, `/console/requests/${id}?lang=zh-CN`)).text();
    expect(html).toContain('<html lang="zh-CN">');
    expect(html).toContain('尚未核验');
    expect(html).not.toContain('延长期限');
    expect(html).not.toContain('拒绝理由');

    // Refusing needs the identity verified first (the workflow's rule), then a reason.
    expect(
      (
        await request(api, o.jar, `/console/requests/${id}/verify`, {
          form: { _csrf: o.csrf, method: 'known-contact', reference: 'called back on the number on file' },
        })
      ).status,
    ).toBe(303);
    await statusIs(id, 'open');
    const noReason = await request(api, o.jar, `/console/requests/${id}/refuse`, {
      form: { _csrf: o.csrf, reason: ' ' },
    });
    expect(noReason.status).toBe(400);
    expect(await noReason.text()).toContain('reason');
    const refused = await request(api, o.jar, `/console/requests/${id}/refuse`, {
      form: { _csrf: o.csrf, reason: 'the same request was answered last week' },
    });
    expect(refused.status).toBe(303);
    const d = await statusIs(id, 'refused');
    expect(d.timeline.find((e) => e.type === 'refused')).toMatchObject({
      text: 'the same request was answered last week',
    });

    const u = await signIn(api, auditor.key);
    const read = await (await request(api, u.jar, `/console/requests/${id}`)).text();
    expect(read).toContain('the same request was answered last week');
    expect(read).not.toContain('<form method="post" action="/console/requests');
    const other = await fileRequest('CN');
    const forged = await request(api, u.jar, `/console/requests/${other}/notes`, {
      form: { _csrf: u.csrf, text: 'an auditor note' },
    });
    expect(forged.status).toBe(403);
    expect((await detail(other)).timeline.some((e) => e.type === 'note')).toBe(false);

    const a = await signIn(api, approver.key);
    expect((await request(api, a.jar, '/console/requests')).status).toBe(403);
    expect((await request(api, a.jar, `/console/requests/${id}`)).status).toBe(403);
    expect(await (await request(api, a.jar, '/console')).text()).not.toContain('Requests due or late');
  }, 120_000);
});
