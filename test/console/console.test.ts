import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeApiKey } from '../../activities/users';
import { CAPABILITIES } from '../../api/console/capabilities';
import { pickLanguage } from '../../api/console/text';
import { auditLog, consoleSessions } from '../../db/schema';
import { seedPrincipal, type OpenApiDocument } from '../helpers/api';
import { createTestApp, type TestApp } from '../helpers/services';
import { hidden, request, signIn as signInTo, type Jar } from './session';

let api: TestApp;
const signIn = (key: string, app = api) => signInTo(app, key);
let tlsApi: TestApp;
let now = new Date('2026-03-01T08:00:00Z');
const clock = () => now;

beforeAll(async () => {
  api = await createTestApp({
    config: { CUSTODIAN_CONSOLE_IDLE_TIMEOUT: 600_000, CUSTODIAN_CONSOLE_SESSION_LIFETIME: 3_600_000 },
    services: { clock },
  });
  tlsApi = await createTestApp({
    config: { CUSTODIAN_PUBLIC_URL: 'https://custodian.example' },
    database: api.testDatabase,
    temporal: api.testTemporal,
  });
}, 120_000);
afterAll(async () => {
  await tlsApi?.close();
  await api?.close();
});

describe('console sign-in and sessions', () => {
  it('sends an anonymous reader to sign in, and back where they were after it', async () => {
    const jar: Jar = new Map();
    const res = await request(api, jar, '/console/audit?action=x');
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/console/sign-in?next=%2Fconsole%2Faudit%3Faction%3Dx');
    const form = await request(api, jar, '/console/sign-in?next=%2Fconsole%2Faudit');
    const html = await form.text();
    expect(form.headers.get('content-security-policy')).toBe(
      "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    );
    expect(html).not.toMatch(/<script|<style|style=/);
    const { key } = await seedPrincipal(api.database.db, 'auditor');
    const res2 = await request(api, jar, '/console/sign-in', {
      form: { _csrf: hidden(html, '_csrf')!, key, next: hidden(html, 'next')! },
    });
    expect(res2.headers.get('location')).toBe('/console/audit');
    // An off-site or non-console `next` is not followed.
    for (const next of ['//evil.example/console', 'https://evil.example/', '/v1/audit']) {
      const j: Jar = new Map();
      const pre = hidden(await (await request(api, j, '/console/sign-in')).text(), '_csrf')!;
      const r = await request(api, j, '/console/sign-in', { form: { _csrf: pre, key, next } });
      expect(r.headers.get('location')).toBe('/console');
    }
  });

  it('sets an HttpOnly, SameSite=Strict cookie, stores only its hash, and audits the sign-in', async () => {
    const p = await seedPrincipal(api.database.db, 'owner');
    const { setCookie, jar } = await signIn(p.key);
    const session = setCookie.find((c) => c.startsWith('custodian-console='))!;
    expect(session).toMatch(/HttpOnly/);
    expect(session).toMatch(/SameSite=Strict/);
    expect(session).not.toMatch(/Secure/);
    const token = jar.get('custodian-console')!;
    const rows = await api.database.db.select().from(consoleSessions).where(eq(consoleSessions.apiKeyId, p.keyId));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.idHash).not.toContain(token);
    expect(JSON.stringify(rows)).not.toContain(token);
    const audit = await api.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, 'console.signed-in'), eq(auditLog.apiKeyId, p.keyId)));
    expect(audit).toHaveLength(1);
    expect(audit[0]!.actor).toBe(`user:${p.userId}`);
  });

  it('uses a __Host- Secure cookie when the public URL is https', async () => {
    const p = await seedPrincipal(api.database.db, 'owner');
    const { setCookie } = await signIn(p.key, tlsApi);
    const session = setCookie.find((c) => c.startsWith('__Host-custodian-console='))!;
    expect(session).toMatch(/Secure/);
    expect(session).toMatch(/Path=\//);
    expect(session).not.toMatch(/Domain=/);
  });

  it('refuses a wrong key (401) and a sign-in without the form’s token (403)', async () => {
    const jar: Jar = new Map();
    const html = await (await request(api, jar, '/console/sign-in')).text();
    const bad = await request(api, jar, '/console/sign-in', {
      form: { _csrf: hidden(html, '_csrf')!, key: 'cust_00000000_' + 'A'.repeat(43) },
    });
    expect(bad.status).toBe(401);
    expect(await bad.text()).toContain('malformed, unknown or revoked');
    const { key } = await seedPrincipal(api.database.db, 'owner');
    const forged = await request(api, new Map(), '/console/sign-in', { form: { key } });
    expect(forged.status).toBe(403);
  });

  it('refuses a POST without the CSRF token (403, nothing done); sign-out ends the session and is audited', async () => {
    const p = await seedPrincipal(api.database.db, 'auditor');
    const { jar, csrf } = await signIn(p.key);
    const forged = await request(api, jar, '/console/sign-out', { form: {} });
    expect(forged.status).toBe(403);
    expect(await forged.text()).toContain('CSRF');
    const wrong = await request(api, jar, '/console/sign-out', {
      form: { _csrf: (csrf[0] === 'x' ? 'y' : 'x') + csrf.slice(1) },
    });
    expect(wrong.status).toBe(403);
    expect((await request(api, jar, '/console')).status).toBe(200);
    const out = await request(api, new Map(jar), '/console/sign-out', { form: { _csrf: csrf } });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/console/sign-in?signed-out');
    // The old cookie, presented again, no longer opens anything: the row is gone.
    expect((await request(api, jar, '/console')).status).toBe(303);
    expect(
      await api.database.db.select().from(consoleSessions).where(eq(consoleSessions.apiKeyId, p.keyId)),
    ).toHaveLength(0);
    const audit = await api.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, 'console.signed-out'), eq(auditLog.apiKeyId, p.keyId)));
    expect(audit).toHaveLength(1);
  });

  it('stops a session at once when its key is revoked', async () => {
    const p = await seedPrincipal(api.database.db, 'auditor');
    const { jar } = await signIn(p.key);
    expect((await request(api, jar, '/console/audit')).status).toBe(200);
    await revokeApiKey(api.database.db, p.keyId, { actor: 'test:revoke' });
    const after = await request(api, jar, '/console/audit');
    expect(after.status).toBe(303);
    expect(after.headers.get('location')).toMatch(/^\/console\/sign-in/);
  });

  it('ends a session after its idle timeout and after its lifetime, however active', async () => {
    const p = await seedPrincipal(api.database.db, 'auditor');
    const { jar } = await signIn(p.key);
    now = new Date(now.getTime() + 9 * 60_000);
    expect((await request(api, jar, '/console')).status).toBe(200);
    now = new Date(now.getTime() + 11 * 60_000);
    expect((await request(api, jar, '/console')).status).toBe(303);

    const active = await signIn(p.key);
    for (let i = 0; i < 6; i++) {
      now = new Date(now.getTime() + 9 * 60_000);
      expect((await request(api, active.jar, '/console')).status).toBe(200);
    }
    now = new Date(now.getTime() + 7 * 60_000);
    expect((await request(api, active.jar, '/console')).status).toBe(303);
  });
});

describe('console roles', () => {
  it('follows the API route roles: every capability names a route whose x-roles match', async () => {
    const doc = (await (await api.app.request('/openapi.json')).json()) as OpenApiDocument;
    for (const [name, { route, roles }] of Object.entries(CAPABILITIES)) {
      const [method, path] = route.split(' ') as [string, string];
      const op = doc.paths[path.replace(/^\/v1/, '/v1')]?.[method.toLowerCase()];
      expect(op, `${name}: ${route}`).toBeDefined();
      expect([...op!['x-roles']!].sort(), name).toEqual([...roles].sort());
    }
  });

  it('hides the audit trail from an owner and refuses it (403); shows it to an auditor', async () => {
    const owner = await signIn((await seedPrincipal(api.database.db, 'owner')).key);
    const home = await (await request(api, owner.jar, '/console')).text();
    expect(home).not.toContain('href="/console/audit"');
    expect(home).toContain('href="/console/backups"');
    expect((await request(api, owner.jar, '/console/audit')).status).toBe(403);
    const auditor = await signIn((await seedPrincipal(api.database.db, 'auditor')).key);
    const page = await request(api, auditor.jar, '/console/audit?action=console.signed-in');
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('console.signed-in');
    expect((await request(api, auditor.jar, '/console/audit?bogus=1')).status).toBe(400);
  });

  it('speaks Chinese by Accept-Language and switches with ?lang=', async () => {
    expect(pickLanguage(undefined, undefined, 'zh-CN,zh;q=0.9,en;q=0.8')).toBe('zh-CN');
    expect(pickLanguage(undefined, undefined, 'fr, en;q=0.5, zh;q=0.4')).toBe('en');
    expect(pickLanguage('en', 'zh-CN', 'zh')).toBe('en');
    const res = await api.app.request('/console/sign-in', { headers: { 'accept-language': 'zh-CN' } });
    expect(await res.text()).toContain('<html lang="zh-CN">');
    const jar: Jar = new Map();
    const en = await request(api, jar, '/console/sign-in?lang=en');
    expect(await en.text()).toContain('<html lang="en">');
    expect(jar.get('custodian-console-lang')).toBe('en');
  });

  it('serves the stylesheet as text/css with a validator', async () => {
    const css = await api.app.request('/console/console.css');
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    const etag = css.headers.get('etag')!;
    expect((await api.app.request('/console/console.css', { headers: { 'if-none-match': etag } })).status).toBe(304);
  });
});
