import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { incidentAckToken } from '../../activities/incidents';
import { revokeApiKey } from '../../activities/users';
import { users } from '../../db/schema';
import { bearer, readJson } from '../helpers/api';
import { insertSubjects } from '../helpers/campaign-subjects';
import { pagesOf, seedPolicy, seedStaff, user } from '../helpers/incidents';
import { startTestApp } from '../helpers/running-app';
import type { TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';
import { hidden, request, signIn, type Jar } from './session';

/**
 * The page's signed link signs the paged responder in to the console for that incident only (single use, expiring,
 * POST after a confirm page); the incident page's CN grade and breach-notice forms go through the API's functions.
 */
let api: TestApp;
let stop: () => Promise<void>;
type Staff = Awaited<ReturnType<typeof seedStaff>>;
let owner: Staff;

beforeAll(async () => {
  ({ api, stop } = await startTestApp());
  owner = await seedStaff(api.database.db, api.keyring, 'owner');
}, 120_000);
afterAll(() => stop?.());

interface Incident {
  status: string;
  acknowledgedBy: string | null;
  grade: { suggested: string | null; confirmed: string | null; confirmedBy: string | null };
  subjectNotices: { campaignId: string; status: string; total: number; notified: number }[];
  timeline: { type: string; details: Record<string, unknown> }[];
}
const get = async (id: string) =>
  readJson<Incident>(await api.app.request(`/v1/incidents/${id}`, { headers: bearer(owner.key) }));

const open = async (responderId: string, extra: Record<string, unknown> = {}) => {
  const policy = await seedPolicy(api.database.db, [{ targets: [user(responderId)], waitSeconds: 600 }]);
  const res = await api.app.request('/v1/incidents', {
    method: 'POST',
    headers: bearer(owner.key),
    body: JSON.stringify({
      title: 'Credit file export on a shared drive',
      severity: 'sev1',
      category: 'data-breach',
      escalationPolicyId: policy.id,
      ...extra,
    }),
  });
  expect(res.status).toBe(202);
  const { id } = await readJson<{ id: string }>(res);
  const [page] = await waitFor(async () => {
    const pages = await pagesOf(api.database.db, id);
    return pages.length ? pages : undefined;
  }, 'the first page');
  const link = `/incident-ack/${incidentAckToken(api.keyring, { pageId: page!.id, expiresAt: page!.linkExpiresAt.getTime() })}`;
  return { id, page: page!, link };
};

/** Follows the link: the confirm page (GET, nothing changes), then its sign-in button (POST). */
const followLink = async (link: string) => {
  const jar: Jar = new Map();
  const confirm = await request(api, jar, link);
  expect(confirm.status).toBe(200);
  const csrf = hidden(await confirm.text(), '_csrf')!;
  const signedIn = await request(api, jar, `${link}/console`, { form: { _csrf: csrf } });
  return { jar, csrf, signedIn };
};

describe('console: the page’s link signs the responder in for the incident', () => {
  it('lands on the incident, works it, and reaches nothing else; the link works once', async () => {
    const responder = await seedStaff(api.database.db, api.keyring, 'responder');
    const other = await open(responder.userId);
    const { id, link } = await open(responder.userId, {
      personalData: true,
      jurisdictions: ['CN'],
      affected: { estimatedCount: 2_000_000 },
    });
    expect((await get(id)).status).toBe('triggered');

    // The confirm page's form needs this browser's token (login CSRF): without it, nothing is claimed.
    const bare = await api.app.request(`${link}/console`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: '_csrf=x',
    });
    expect(bare.status).toBe(403);

    const { jar, signedIn } = await followLink(link);
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.get('location')).toBe(`/console/incidents/${id}`);
    const cookie = signedIn.headers.getSetCookie().find((c) => c.startsWith('custodian-console='))!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    const expires = Date.parse(/Expires=([^;]+)/i.exec(cookie)![1]!);
    expect(expires - Date.now()).toBeLessThanOrEqual(3_600_000 + 5_000);

    const page = await request(api, jar, `/console/incidents/${id}`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('for this incident only');
    expect(html).toContain('relatively major');
    const csrf = hidden(html, '_csrf')!;
    expect(html).not.toContain('Send breach notices');
    expect(html).not.toContain('href="/console/audit"');

    // The session reaches this incident and nothing else.
    for (const path of ['/console', '/console/subjects', `/console/incidents/${other.id}`]) {
      const res = await request(api, jar, path);
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toMatch(/^\/console\/sign-in/);
    }
    expect((await request(api, jar, `/console/incidents/${other.id}/ack`, { form: { _csrf: csrf } })).status).toBe(403);
    const notices = await request(api, jar, `/console/incidents/${id}/subject-notices`, { form: { _csrf: csrf } });
    expect(notices.status).toBe(403);

    // The responder confirms the suggested grade and acknowledges: the API's own updates, by the paged user.
    const graded = await request(api, jar, `/console/incidents/${id}/grade`, {
      form: { _csrf: csrf, grade: 'relatively-major' },
    });
    expect(graded.status).toBe(303);
    const badGrade = await request(api, jar, `/console/incidents/${id}/grade`, {
      form: { _csrf: csrf, grade: 'huge' },
    });
    expect(badGrade.status).toBe(400);
    expect(await badGrade.text()).toContain('grade');
    const acked = await request(api, jar, `/console/incidents/${id}/ack`, { form: { _csrf: csrf } });
    expect(acked.headers.get('location')).toBe(`/console/incidents/${id}?done=acked`);
    const incident = await get(id);
    expect(incident).toMatchObject({
      status: 'acknowledged',
      acknowledgedBy: `user:${responder.userId}`,
      grade: { suggested: 'relatively-major', confirmed: 'relatively-major' },
    });
    expect(incident.timeline.find((e) => e.type === 'acknowledged')?.details).toMatchObject({ method: 'console' });
    const [signIn] = await api.database.sql<{ api_key_id: string | null; details: Record<string, unknown> }[]>`
      select api_key_id, details from audit_log where action = 'console.signed-in' and target_id = ${responder.userId}`;
    expect(signIn).toMatchObject({ api_key_id: null, details: { via: 'page-link', incident: id } });

    // The same link a second time: refused, whether to sign in or to acknowledge.
    expect((await request(api, new Map(), link)).status).toBe(410);
    const again = await api.app.request(`${link}/console`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: 'custodian-page-link=t' },
      body: '_csrf=t',
    });
    expect(again.status).toBe(410);
    expect((await api.app.request(link, { method: 'POST' })).status).toBe(410);

    // Sign-out ends it.
    expect((await request(api, jar, '/console/sign-out', { form: { _csrf: csrf } })).status).toBe(303);
    expect((await request(api, jar, `/console/incidents/${id}`)).status).toBe(303);
  });

  it('refuses an expired or altered link, and ends with the user’s last key or the user', async () => {
    const responder = await seedStaff(api.database.db, api.keyring, 'responder');
    const { id, page, link } = await open(responder.userId);
    const expired = `/incident-ack/${incidentAckToken(api.keyring, { pageId: page.id, expiresAt: Date.now() - 1000 })}`;
    expect((await request(api, new Map(), expired)).status).toBe(410);
    const post = (path: string) =>
      api.app.request(path, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: 'custodian-page-link=t' },
        body: '_csrf=t',
      });
    expect((await post(`${expired}/console`)).status).toBe(410);
    expect((await post(`${link.replace(/.$/, (ch) => (ch === 'A' ? 'B' : 'A'))}/console`)).status).toBe(403);

    const { jar } = await followLink(link);
    expect((await request(api, jar, `/console/incidents/${id}`)).status).toBe(200);
    await revokeApiKey(api.database.db, responder.keyId, { actor: 'test:revoke' });
    expect((await request(api, jar, `/console/incidents/${id}`)).status).toBe(303);

    // A disabled responder's link signs no one in.
    const gone = await seedStaff(api.database.db, api.keyring, 'responder');
    const second = await open(gone.userId);
    const confirm = await request(api, new Map(), second.link);
    expect(confirm.status).toBe(200);
    await api.database.db.update(users).set({ disabledAt: new Date() }).where(eq(users.id, gone.userId));
    expect((await post(`${second.link}/console`)).status).toBe(403);
  });
});

describe('console: breach notices from the incident page', () => {
  it('an owner sends them through the API’s function; a missing section is a 400 naming it; progress shows', async () => {
    const responder = await seedStaff(api.database.db, api.keyring, 'responder');
    const affected = await insertSubjects(api.database.db, api.keyring, 6, { locale: 'zh-CN' });
    const { id } = await open(responder.userId, { personalData: true, affected: { subjectIds: affected.ids } });
    const s = await signIn(api, owner.key);
    const html = await (await request(api, s.jar, `/console/incidents/${id}`)).text();
    expect(html).toContain('Send breach notices');
    const key = hidden(html, 'idempotencyKey')!;
    const section = (lang: string) => ({
      [`texts.${lang}.whatHappened`]: `${lang}: a credit file export sat on a shared drive`,
      [`texts.${lang}.likelyConsequences`]: `${lang}: targeted phishing`,
      [`texts.${lang}.measuresTaken`]: `${lang}: the drive was locked and the file deleted`,
      [`texts.${lang}.whatYouCanDo`]: '',
    });
    const form = {
      _csrf: s.csrf,
      idempotencyKey: key,
      ...section('zh-CN'),
      ...section('en'),
      'contact.name': 'Example Credit Ltd',
      'contact.contact': 'privacy@example.com',
    };
    const missing = await request(api, s.jar, `/console/incidents/${id}/subject-notices`, {
      form: { ...form, 'texts.en.measuresTaken': '' },
    });
    expect(missing.status).toBe(400);
    expect(await missing.text()).toContain('texts.en.measuresTaken');

    const sent = await request(api, s.jar, `/console/incidents/${id}/subject-notices`, { form });
    expect(sent.headers.get('location')).toBe(`/console/incidents/${id}?done=notices`);
    // The same form sent twice starts one campaign.
    expect((await request(api, s.jar, `/console/incidents/${id}/subject-notices`, { form })).status).toBe(303);
    const done = await waitFor(async () => {
      const n = (await get(id)).subjectNotices;
      return n.length === 1 && n[0]!.status === 'completed' ? n[0] : undefined;
    }, 'the breach-notice campaign');
    expect(done).toMatchObject({ total: 6, notified: 6 });
    const page = await (await request(api, s.jar, `/console/incidents/${id}`)).text();
    expect(page).toContain('completed: 6 of 6 notified, 0 failed');
  });
});
