import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueApiKey } from '../../activities/users';
import type { App } from '../../api/app';
import { bearer, readJson, seedPrincipal, type Problem } from '../helpers/api';
import { createTestApp, type TestApp } from '../helpers/services';

const LIMIT = 5;
const WINDOW_SECONDS = 60;

let api: TestApp;
let app: App;
let now = Date.parse('2026-01-05T09:00:00Z');
let owner: { key: string; keyId: string; userId: string };
let auditor: string;
let admin: string;

beforeAll(async () => {
  api = await createTestApp({
    config: { CUSTODIAN_SEARCH_RATE_LIMIT: LIMIT, CUSTODIAN_SEARCH_RATE_WINDOW_SECONDS: WINDOW_SECONDS },
    services: { clock: () => new Date(now) },
  });
  app = api.app;
  owner = await seedPrincipal(api.database.db, 'owner');
  ({ key: auditor } = await seedPrincipal(api.database.db, 'auditor'));
  ({ key: admin } = await seedPrincipal(api.database.db, 'admin'));
});
afterAll(async () => {
  await api?.close();
});

const get = (path: string, key: string) => app.request(path, { headers: bearer(key) });
const searchPhone = (digits: string, key: string) =>
  get(`/v1/subjects/search?phone=139${digits}0123&purpose=customer-service`, key);
const searchEntries = () =>
  api.database.sql`select actor, api_key_id, target_type, target_id, details from audit_log
    where action = 'subject.searched' order by seq`;

describe('blind-index search (masked 139****0123 recovered by enumerating the 4 hidden digits)', () => {
  it('lets an owner key search its budget, then answers 429 with Retry-After, each search audited without the value', async () => {
    const statuses: number[] = [];
    let refused: Response | undefined;
    for (let guess = 0; guess < 10_000 && !refused; guess++) {
      const res = await searchPhone(String(guess).padStart(4, '0'), owner.key);
      statuses.push(res.status);
      if (res.status === 429) refused = res;
    }
    expect(statuses).toEqual([...Array<number>(LIMIT).fill(200), 429]);
    expect(refused!.headers.get('content-type')).toBe('application/problem+json');
    // One token comes back every WINDOW / LIMIT seconds.
    expect(refused!.headers.get('retry-after')).toBe(String(WINDOW_SECONDS / LIMIT));
    expect(await readJson<Problem>(refused!)).toMatchObject({ status: 429, code: 'rate-limited' });

    const entries = await searchEntries();
    expect(entries).toHaveLength(LIMIT);
    for (const entry of entries) {
      expect(entry).toEqual({
        actor: `user:${owner.userId}`,
        api_key_id: owner.keyId,
        target_type: 'subject-index',
        target_id: 'phone',
        details: { index: 'phone', purpose: 'customer-service', matches: 0 },
      });
    }
    expect(JSON.stringify(entries)).not.toMatch(/139\d{4}0123|0123/);
    expect(api.logLines.join('\n')).not.toMatch(/139\d{4}0123/);
  });

  it('refills with time and counts each API key on its own', async () => {
    now += (WINDOW_SECONDS / LIMIT) * 1000;
    expect((await searchPhone('9000', owner.key)).status).toBe(200);
    expect((await searchPhone('9001', owner.key)).status).toBe(429);

    const second = await issueApiKey(api.database.db, owner.userId, { actor: 'test:seed' });
    for (let i = 0; i < LIMIT; i++) expect((await searchPhone(`800${i}`, second.key)).status).toBe(200);
    expect((await searchPhone('8009', second.key)).status).toBe(429);
    const keys = await api.database.sql`select api_key_id, count(*)::int n from audit_log
      where action = 'subject.searched' group by api_key_id`;
    expect(Object.fromEntries(keys.map((k) => [k.api_key_id, k.n]))).toEqual({
      [owner.keyId]: LIMIT + 1,
      [second.id]: LIMIT,
    });
  });

  it('refuses an auditor with 403 and leaves no audit entry', async () => {
    const before = (await searchEntries()).length;
    const res = await searchPhone('0000', auditor);
    expect(res.status).toBe(403);
    expect((await searchEntries()).length).toBe(before);
  });
});

describe('strings that cannot be stored', () => {
  it('answers 400 naming the field for a NUL in a body, a query filter or a search value', async () => {
    const cases: [string, RequestInit & { key: string }, string][] = [
      ['/v1/users', { key: admin, method: 'POST', body: JSON.stringify({ name: 'a\u0000b', role: 'owner' }) }, 'name'],
      ['/v1/subjects?externalRef=%00', { key: owner.key }, 'externalRef'],
      ['/v1/audit?targetId=%00', { key: auditor }, 'targetId'],
      ['/v1/audit?action=%00', { key: auditor }, 'action'],
      ['/v1/audit?targetType=x%00y', { key: auditor }, 'targetType'],
      ['/v1/subjects/search?phone=%00&purpose=customer-service', { key: owner.key }, 'phone'],
    ];
    for (const [path, { key, ...init }, field] of cases) {
      const res = await app.request(path, { ...init, headers: bearer(key) });
      expect(res.status, path).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect((await readJson<Problem>(res)).fields, path).toEqual([
        { path: field, message: 'contains a NUL character or an unpaired surrogate' },
      ]);
    }
  });

  it('refuses an unpaired surrogate in a JSON body as well', async () => {
    const res = await app.request('/v1/users', {
      method: 'POST',
      headers: bearer(admin),
      body: '{"name":"x\\ud800y","role":"owner"}',
    });
    expect(res.status).toBe(400);
    expect((await readJson<Problem>(res)).fields).toEqual([
      { path: 'name', message: expect.stringMatching(/surrogate/) },
    ]);
  });
});

describe('response headers', () => {
  const hardened = (res: Response) => {
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  };

  it('marks every API response, errors included, as not to be stored, sniffed, framed or referred', async () => {
    const responses = [
      await get('/v1/audit?limit=1', auditor),
      await searchPhone('1234', auditor),
      await app.request('/v1/audit'),
      await get('/v1/nothing-here', auditor),
      await app.request('/healthz'),
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 403, 401, 404, 200]);
    for (const res of responses) {
      hardened(res);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
    }
  });

  it('keeps the reference page working: its own CSP, with framing refused', async () => {
    const res = await app.request('/docs');
    expect(res.status).toBe(200);
    hardened(res);
    const csp = res.headers.get('content-security-policy')!;
    // Swagger UI from this origin: scripts and styles as files, style attributes only inline, no script inline.
    expect(csp).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; " +
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    );
  });
});
