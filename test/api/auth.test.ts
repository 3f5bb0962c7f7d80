import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeApiKey } from '../../activities/users';
import { assertEveryV1RouteGuarded, defineRoute, endpoint, v1Resource, type Endpoint } from '../../api/auth';
import { bearer, readJson, seedPrincipal, type OpenApiDocument, type Problem } from '../helpers/api';
import { createTestApp, type TestApp } from '../helpers/services';

let api: TestApp;
let admin: Awaited<ReturnType<typeof seedPrincipal>>;
let auditor: Awaited<ReturnType<typeof seedPrincipal>>;
let owner: Awaited<ReturnType<typeof seedPrincipal>>;

beforeAll(async () => {
  api = await createTestApp();
  admin = await seedPrincipal(api.database.db, 'admin');
  auditor = await seedPrincipal(api.database.db, 'auditor');
  owner = await seedPrincipal(api.database.db, 'owner');
});
afterAll(() => api?.close());

const getAudit = (headers: Record<string, string> = {}) => api.app.request('/v1/audit', { headers });

const expectProblem = async (res: Response, status: number, code: string) => {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  const body = await readJson<Problem>(res);
  expect(body).toMatchObject({ status, code, type: `urn:custodian:problem:${code}` });
  expect(JSON.stringify(body)).not.toMatch(/stack|at .*\.ts/);
  return body;
};

describe('authentication', () => {
  it('refuses a request without a key with 401 and WWW-Authenticate: Bearer', async () => {
    const res = await getAudit();
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    await expectProblem(res, 401, 'credentials-missing');
  });

  it.each([
    ['a non-bearer scheme', `Basic ${Buffer.from('a:b').toString('base64')}`],
    ['a malformed key', 'Bearer not-a-key'],
    ['a truncated key', 'Bearer cust_0123abcd_short'],
    ['an unknown well-formed key', `Bearer cust_0123abcd_${'A'.repeat(43)}`],
  ])('refuses %s with 401', async (_, authorization) => {
    const res = await getAudit({ authorization });
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    await expectProblem(res, 401, 'credentials-invalid');
  });

  it('refuses a revoked key', async () => {
    const doomed = await seedPrincipal(api.database.db, 'auditor');
    expect((await getAudit(bearer(doomed.key))).status).toBe(200);
    await revokeApiKey(api.database.db, doomed.keyId, { actor: 'test' });
    await expectProblem(await getAudit(bearer(doomed.key)), 401, 'credentials-invalid');
  });

  it('refuses the key of a disabled user', async () => {
    const leaver = await seedPrincipal(api.database.db, 'auditor');
    await api.database.sql`update users set disabled_at = now() where id = ${leaver.userId}`;
    await expectProblem(await getAudit(bearer(leaver.key)), 401, 'credentials-invalid');
  });

  it('answers 401 before 404 on unknown /v1 paths, and 404 problem once authenticated', async () => {
    await expectProblem(await api.app.request('/v1/nothing-here'), 401, 'credentials-missing');
    await expectProblem(await api.app.request('/v1/nothing-here', { headers: bearer(admin.key) }), 404, 'not-found');
  });
});

describe('authorization', () => {
  it('refuses a principal without the route role with 403', async () => {
    const res = await api.app.request('/v1/users', {
      method: 'POST',
      headers: bearer(owner.key),
      body: JSON.stringify({ name: 'x', role: 'owner' }),
    });
    const body = await expectProblem(res, 403, 'forbidden');
    expect(body.detail).toContain('admin');
  });

  it('gives admin no implicit roles: admin cannot read the audit trail, an auditor can', async () => {
    await expectProblem(await getAudit(bearer(admin.key)), 403, 'forbidden');
    await expectProblem(await api.app.request('/v1/audit/verify', { headers: bearer(admin.key) }), 403, 'forbidden');
    expect((await getAudit(bearer(auditor.key))).status).toBe(200);
  });
});

describe('deny by default', () => {
  const unguarded = createRoute({
    method: 'get',
    path: '/open',
    responses: { 200: { description: 'ok', content: { 'application/json': { schema: z.object({}) } } } },
  });

  it('does not type-check a /v1 endpoint without declared roles', () => {
    // @ts-expect-error a plain createRoute() route has no roles, so endpoint() refuses it
    const sneaky = () => endpoint(unguarded, (c) => c.json({}, 200));
    // @ts-expect-error defineRoute() requires a non-empty roles list
    const noRoles = () => defineRoute({ method: 'get', path: '/x', responses: {} });
    // @ts-expect-error ...and an empty list is not one
    const emptyRoles = () => defineRoute({ roles: [], method: 'get', path: '/x', responses: {} });
    expect([sneaky, noRoles, emptyRoles]).toHaveLength(3);
  });

  it('refuses at runtime an unguarded route smuggled past the types', () => {
    const smuggled = { route: unguarded, handler: () => new Response() } as unknown as Endpoint;
    expect(() => v1Resource(smuggled)).toThrow(/GET \/open declares no roles/);
  });

  it('refuses at startup a /v1 route added to an app by any other means', () => {
    const app = new OpenAPIHono();
    app.route(
      '/v1',
      new Hono().get('/backdoor', (c) => c.text('hi')),
    );
    expect(() => assertEveryV1RouteGuarded(app)).toThrow(/GET \/v1\/backdoor/);
    expect(() => assertEveryV1RouteGuarded(api.app)).not.toThrow();
  });

  it('declares the roles and bearer security of every /v1 operation in the OpenAPI document', async () => {
    const doc = await readJson<OpenApiDocument>(await api.app.request('/openapi.json'));
    const operations = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith('/v1/'))
      .flatMap(([, item]) => Object.values(item));
    expect(operations.length).toBeGreaterThanOrEqual(5);
    for (const op of operations) {
      expect(op.security).toEqual([{ bearerAuth: [] }]);
      expect(op['x-roles']?.length).toBeGreaterThan(0);
    }
  });
});
