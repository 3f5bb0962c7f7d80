import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY_PATTERN, hashApiKey } from '../../activities/users';
import { bearer, readJson, seedPrincipal, type Problem } from '../helpers/api';
import { createTestApp, type TestApp } from '../helpers/services';

const BODY_LIMIT = 4096;
let api: TestApp;
let adminKey: string;
let admin: { userId: string; keyId: string };

beforeAll(async () => {
  api = await createTestApp({ config: { CUSTODIAN_BODY_LIMIT_BYTES: BODY_LIMIT } });
  ({ key: adminKey, ...admin } = await seedPrincipal(api.database.db, 'admin'));
});
afterAll(() => api?.close());

const post = (path: string, body?: unknown, headers = bearer(adminKey)) =>
  api.app.request(path, { method: 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body) });

const problemOf = async (res: Response, status: number) => {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  return readJson<Problem>(res);
};

/** The secret part after `cust_<prefix>_`; base64url may itself contain `_`. */
const secretOf = (key: string) => key.slice('cust_'.length + 9);

describe('users and API keys', () => {
  it('creates a user, issues a key that works at once, and revokes it', async () => {
    const created = await post('/v1/users', { name: 'Ada Auditor', role: 'auditor' });
    expect(created.status).toBe(201);
    const user = await readJson<{ id: string; name: string; role: string }>(created);
    expect(user).toMatchObject({ name: 'Ada Auditor', role: 'auditor', id: expect.any(String) });

    const issued = await post(`/v1/users/${user.id}/api-keys`);
    expect(issued.status).toBe(201);
    const { id: keyId, key, prefix } = await readJson<{ id: string; key: string; prefix: string }>(issued);
    expect(key).toMatch(API_KEY_PATTERN);
    expect(key.startsWith(`cust_${prefix}_`)).toBe(true);
    const [stored] = await api.database.sql`select key_hash, prefix, issued_by from api_keys where id = ${keyId}`;
    expect(stored).toEqual({ key_hash: hashApiKey(key), prefix, issued_by: `user:${admin.userId}` });

    expect((await api.app.request('/v1/audit', { headers: bearer(key) })).status).toBe(200);

    const revoked = await post(`/v1/api-keys/${keyId}/revoke`);
    expect(revoked.status).toBe(200);
    const { revokedAt } = await readJson<{ revokedAt: string }>(revoked);
    expect((await api.app.request('/v1/audit', { headers: bearer(key) })).status).toBe(401);
    // Revoking again changes nothing and appends nothing.
    expect(await (await post(`/v1/api-keys/${keyId}/revoke`)).json()).toEqual({ id: keyId, revokedAt });

    const audit = await api.database.sql`
      select action, actor, api_key_id, target_id, details from audit_log where target_id in (${user.id}, ${keyId}) order by seq`;
    // An admin issuing a key for someone else is its own action, naming the admin and the key they used.
    expect(audit.map((e) => e.action)).toEqual(['user.created', 'api-key.issued-for-user', 'api-key.revoked']);
    for (const entry of audit) expect(entry).toMatchObject({ actor: `user:${admin.userId}`, api_key_id: admin.keyId });
    expect(audit[0]!.details).toEqual({ userId: user.id, role: 'auditor' });
    expect(audit[1]!.details).toEqual({ apiKeyId: keyId, userId: user.id, role: 'auditor' });
    const trail = JSON.stringify(audit);
    for (const secret of [key, hashApiKey(key), secretOf(key), 'Ada Auditor']) expect(trail).not.toContain(secret);
    expect(api.logLines.join('\n')).not.toContain(secretOf(key));
    expect(api.logLines.join('\n')).not.toContain('Ada Auditor');
  });

  it('names every failing field of an invalid body', async () => {
    const body = await problemOf(await post('/v1/users', { name: '', role: 'king' }), 400);
    expect(body.code).toBe('invalid-request');
    expect(body.fields?.map((f) => f.path).sort()).toEqual(['name', 'role']);
  });

  it('refuses an unknown field in a strict body', async () => {
    const body = await problemOf(await post('/v1/users', { name: 'Bo', role: 'owner', isAdmin: true }), 400);
    expect(body.fields).toEqual([{ path: 'isAdmin', message: 'unknown field' }]);
  });

  it('refuses malformed JSON and a wrong content type', async () => {
    const malformed = await api.app.request('/v1/users', { method: 'POST', headers: bearer(adminKey), body: '{"na' });
    expect((await problemOf(malformed, 400)).code).toBe('malformed-request');
    expect((await problemOf(await post('/v1/users'), 400)).code).toBe('malformed-request');
    const text = await api.app.request('/v1/users', {
      method: 'POST',
      headers: { ...bearer(adminKey), 'content-type': 'text/plain' },
      body: 'name=x',
    });
    expect((await problemOf(text, 415)).code).toBe('unsupported-media-type');
  });

  it('refuses an oversized body with 413, whether or not it declares its length', async () => {
    const huge = JSON.stringify({ name: 'x'.repeat(BODY_LIMIT * 2), role: 'owner' });
    const undeclared = await api.app.request('/v1/users', { method: 'POST', headers: bearer(adminKey), body: huge });
    expect((await problemOf(undeclared, 413)).code).toBe('payload-too-large');
    const declared = await api.app.request('/v1/users', {
      method: 'POST',
      headers: { ...bearer(adminKey), 'content-length': String(huge.length) },
      body: huge,
    });
    expect((await problemOf(declared, 413)).code).toBe('payload-too-large');
  });

  it('answers 400 for a non-uuid id and 404 for an unknown one', async () => {
    const bad = await problemOf(await post('/v1/users/not-a-uuid/api-keys'), 400);
    expect(bad.fields?.[0]?.path).toBe('id');
    expect((await problemOf(await post(`/v1/users/${randomUUID()}/api-keys`), 404)).code).toBe('not-found');
    expect((await problemOf(await post(`/v1/api-keys/${randomUUID()}/revoke`), 404)).code).toBe('not-found');
    expect((await problemOf(await post('/v1/api-keys/42/revoke'), 400)).fields?.[0]?.path).toBe('id');
  });

  it('refuses a key for a disabled user with 409', async () => {
    const leaver = await seedPrincipal(api.database.db, 'owner');
    await api.database.sql`update users set disabled_at = now() where id = ${leaver.userId}`;
    expect((await problemOf(await post(`/v1/users/${leaver.userId}/api-keys`), 409)).code).toBe('user-disabled');
  });
});
