import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notifyActivities } from '../../activities/notify';
import { notifications } from '../../db/schema';
import { bearer, readJson, seedPrincipal, type Problem } from '../helpers/api';
import { insertNotice, insertSubject } from '../helpers/notifications';
import { createTestApp, type TestApp } from '../helpers/services';

interface Row {
  id: string;
  idempotencyKey: string;
  status: string;
  template: string;
  subjectId: string;
  recipientRef: string;
  locale: string;
  createdAt: string;
}
interface Page {
  notifications: Row[];
  next: string | null;
}

let api: TestApp;
let adminKey: string;
let ownerKey: string;
let zhSubject: string;
let enSubject: string;
const EMAIL = 'wang.fang@example.cn';

beforeAll(async () => {
  api = await createTestApp();
  ({ key: adminKey } = await seedPrincipal(api.database.db, 'admin'));
  ({ key: ownerKey } = await seedPrincipal(api.database.db, 'owner'));
  const { db } = api.database;
  zhSubject = await insertSubject(db, api.keyring, { locale: 'zh-CN', email: EMAIL });
  enSubject = await insertSubject(db, api.keyring, { locale: 'en', email: 'tom@example.com' });
  const noticeId = await insertNotice(db);
  // Through the activity (log channel, the default): the rows are what the notifier writes.
  const acts = notifyActivities({ ...api, db });
  const env = new MockActivityEnvironment();
  for (const [i, subjectId] of [zhSubject, enSubject, zhSubject].entries())
    await env.run(acts.sendNotification, {
      idempotencyKey: `consent-${i}:request`,
      template: i === 1 ? ('consent-reminder' as const) : ('consent-request' as const),
      subjectId,
      noticeId,
    });
  // Rows created in the same microsecond: the page boundary falls between them by ID.
  const at = new Date('2026-01-01T00:00:00.000Z');
  await db.insert(notifications).values(
    Array.from({ length: 5 }, (_, i) => ({
      idempotencyKey: `pending-${i}`,
      channel: 'log' as const,
      template: 'transfer-notice',
      locale: 'en',
      subjectId: enSubject,
      recipientRef: `subject:${enSubject}`,
      createdAt: at,
    })),
  );
});
afterAll(() => api?.close());

const get = (query = '', key = adminKey) => api.app.request(`/v1/notifications${query}`, { headers: bearer(key) });

describe('GET /v1/notifications', () => {
  it('lists the outbox newest first for an admin, without addresses', async () => {
    const res = await get();
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain(EMAIL);
    const page = JSON.parse(text) as Page;
    expect(page.next).toBeNull();
    expect(page.notifications).toHaveLength(8);
    expect(page.notifications.slice(0, 3).map((r) => r.idempotencyKey)).toEqual([
      'consent-2:request',
      'consent-1:request',
      'consent-0:request',
    ]);
    expect(page.notifications[0]).toMatchObject({
      status: 'sent',
      locale: 'zh-CN',
      recipientRef: `subject:${zhSubject}`,
      channel: 'log',
    });
  });

  it('filters by status, template and subject', async () => {
    const sent = await readJson<Page>(await get('?status=sent'));
    expect(sent.notifications.map((r) => r.idempotencyKey).sort()).toEqual([
      'consent-0:request',
      'consent-1:request',
      'consent-2:request',
    ]);
    const reminders = await readJson<Page>(await get('?template=consent-reminder'));
    expect(reminders.notifications.map((r) => r.idempotencyKey)).toEqual(['consent-1:request']);
    const zh = await readJson<Page>(await get(`?subjectId=${zhSubject.toUpperCase()}`));
    expect(zh.notifications).toHaveLength(2);
    const both = await readJson<Page>(await get(`?subjectId=${enSubject}&status=pending`));
    expect(both.notifications).toHaveLength(5);
  });

  it('pages with a keyset cursor, ties broken by ID: every row once', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const page: Page = await readJson<Page>(await get(`?limit=2${after ? `&after=${after}` : ''}`));
      seen.push(...page.notifications.map((r) => r.idempotencyKey));
      after = page.next;
      pages++;
    } while (after && pages < 10);
    expect(seen).toHaveLength(8);
    expect(new Set(seen).size).toBe(8);
    expect(pages).toBe(5); // 4 full pages, then an empty one that ends the walk
  });

  it('refuses a bad cursor or an unknown filter (400), and callers who are not admin (403)', async () => {
    const bad = await get('?after=not-a-cursor');
    expect(bad.status).toBe(400);
    expect((await readJson<Problem>(bad)).fields?.[0]?.path).toBe('after');
    expect((await get('?state=sent')).status).toBe(400);
    const owner = await get('', ownerKey);
    expect(owner.status).toBe(403);
    expect(owner.headers.get('content-type')).toBe('application/problem+json');
    expect((await api.app.request('/v1/notifications')).status).toBe(401);
  });
});
