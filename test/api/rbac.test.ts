import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeApiKey } from '../../activities/users';
import { ROLES, type Role } from '../../domain/roles';
import { bearer, readJson, seedPrincipal, type OpenApiDocument } from '../helpers/api';
import { createTestApp, type TestApp } from '../helpers/services';

interface Operation {
  method: string;
  path: string;
  roles: string[] | undefined;
  security: unknown;
}

let api: TestApp;
let operations: Operation[];
const keys = {} as Record<Role, string>;
let revoked: string;

beforeAll(async () => {
  api = await createTestApp();
  for (const role of ROLES) keys[role] = (await seedPrincipal(api.database.db, role)).key;
  const victim = await seedPrincipal(api.database.db, 'admin', 'revoked admin');
  await revokeApiKey(api.database.db, victim.keyId, { actor: 'test:seed' });
  revoked = victim.key;
  const doc = await readJson<OpenApiDocument>(await api.app.request('/openapi.json'));
  operations = Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ method, path, roles: op['x-roles'], security: op.security })),
  );
});
afterAll(async () => {
  await api?.close();
});

const v1 = () => operations.filter((o) => o.path.startsWith('/v1/'));
const label = (o: Operation) => `${o.method.toUpperCase()} ${o.path}`;
/** A concrete path: every path parameter a fresh UUID (no record has it, so nothing is changed). */
const concrete = (path: string) => path.replace(/\{[^}]+\}/g, () => randomUUID());
const call = (o: Operation, headers: Record<string, string>) =>
  api.app.request(concrete(o.path), { method: o.method.toUpperCase(), headers });

describe('role-based access, derived from the OpenAPI document', () => {
  it('declares a bearer key and a non-empty role list on every /v1 operation, and none elsewhere', () => {
    expect(v1().length).toBeGreaterThan(5);
    for (const o of v1()) {
      expect(o.security, label(o)).toEqual([{ bearerAuth: [] }]);
      expect(o.roles?.length, label(o)).toBeGreaterThan(0);
      for (const role of o.roles!) expect(ROLES, label(o)).toContain(role);
    }
    for (const o of operations.filter((p) => !p.path.startsWith('/v1/'))) expect(o.security, label(o)).toEqual([]);
  });

  it('keeps the roles of the routes that expose personal data or control access', () => {
    const declared = Object.fromEntries(v1().map((o) => [label(o), o.roles]));
    expect(declared).toMatchObject({
      'GET /v1/subjects/search': ['owner'],
      'GET /v1/subjects/{id}/reveal': ['owner'],
      'GET /v1/audit': ['auditor'],
      'POST /v1/users': ['admin'],
      'POST /v1/users/{id}/api-keys': ['admin'],
      'POST /v1/api-keys/{id}/revoke': ['admin'],
    });
  });

  it('answers 403 to every role an operation does not declare, and never 401/403 to one it does', async () => {
    const expected: Record<string, string> = {};
    const actual: Record<string, string> = {};
    for (const o of v1()) {
      for (const role of ROLES) {
        const cell = `${label(o)} as ${role}`;
        const allowed = o.roles!.includes(role);
        expected[cell] = allowed ? 'allowed' : '403';
        const res = await call(o, bearer(keys[role]));
        actual[cell] = res.status === 401 || res.status === 403 ? String(res.status) : 'allowed';
        if (res.status === 403) expect(res.headers.get('content-type'), cell).toBe('application/problem+json');
        expect(res.status, cell).toBeLessThan(500);
      }
    }
    expect(actual).toEqual(expected);
  });

  it('answers 401 to no key, a malformed key, an unknown key and a revoked key, on every operation', async () => {
    const presented: Record<string, Record<string, string>> = {
      'no key': {},
      'empty bearer': { authorization: 'Bearer ' },
      'another scheme': { authorization: `Basic ${keys.admin}` },
      'malformed key': { authorization: 'Bearer not-a-key' },
      'truncated key': { authorization: `Bearer ${keys.admin.slice(0, -1)}` },
      'unknown key': bearer(`cust_0123abcd_${'A'.repeat(43)}`),
      'revoked key': bearer(revoked),
    };
    const statuses: Record<string, number> = {};
    for (const o of v1()) {
      for (const [what, headers] of Object.entries(presented)) {
        const res = await call(o, headers);
        const cell = `${label(o)} with ${what}`;
        statuses[cell] = res.status;
        expect(res.headers.get('content-type'), cell).toBe('application/problem+json');
        expect(res.headers.get('www-authenticate'), cell).toBe('Bearer');
      }
    }
    expect(Object.entries(statuses).filter(([, status]) => status !== 401)).toEqual([]);
  });
});
