import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../api/app';
import { connect, type Database } from '../../db/client';
import { createLogger } from '../../runtime/logger';
import { freePort } from '../../runtime/ports';
import { bearer, readJson, seedPrincipal, type OpenApiDocument } from '../helpers/api';
import { createTestApp, type TestApp } from '../helpers/services';

const METRICS_TOKEN = 'metrics-token-for-tests-0123456789';

let api: TestApp;
let unreachable: Database;
beforeAll(async () => {
  api = await createTestApp({ config: { CUSTODIAN_METRICS_TOKEN: METRICS_TOKEN } });
  // Nothing listens on a port the OS just handed out and released.
  unreachable = connect(`postgres://custodian@127.0.0.1:${await freePort()}/gone`, { max: 1 });
});
afterAll(async () => {
  await unreachable?.close();
  await api?.close();
});

/** The real app and Temporal client, but a database nobody answers for. */
const appWithoutDatabase = () => {
  const logLines: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => void logLines.push(line) });
  const app = createApp({ ...api, database: unreachable, logger });
  return { app, logLines };
};

describe('health, readiness, metrics', () => {
  it('answers /healthz', async () => {
    const res = await api.app.request('/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('is ready when Postgres and Temporal answer', async () => {
    const res = await api.app.request('/readyz');
    expect(await res.json()).toEqual({ status: 'ok', checks: { postgres: 'ok', temporal: 'ok' }, failed: [] });
    expect(res.status).toBe(200);
  });

  it('is not ready, naming postgres, when the database is unreachable', async () => {
    const started = performance.now();
    const res = await appWithoutDatabase().app.request('/readyz');
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      status: 'unavailable',
      checks: { postgres: 'failed', temporal: 'ok' },
      failed: ['postgres'],
    });
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('exposes request counts by route pattern, workflow starts and process metrics', async () => {
    const { key } = await seedPrincipal(api.database.db, 'auditor');
    await api.app.request('/healthz');
    await api.app.request('/v1/audit?limit=1', { headers: bearer(key) });
    const owner = await seedPrincipal(api.database.db, 'owner');
    const search = '/v1/subjects/search?phone=1&purpose=customer-service';
    expect((await api.app.request(search, { headers: bearer(owner.key) })).status).toBe(200);
    api.metrics.recordWorkflowStart('consent');
    const res = await api.app.request('/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(/^http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+$/m);
    expect(text).toContain('http_requests_total{method="GET",route="/v1/audit",status="200"} 1');
    // Not /v1/subjects/:id, which matches the same path but did not answer.
    expect(text).toContain('http_requests_total{method="GET",route="/v1/subjects/search",status="200"} 1');
    expect(text).toContain('http_request_duration_seconds_bucket{le="0.005",method="GET",route="/healthz"');
    expect(text).toContain('workflow_starts_total{workflow_type="consent"} 1');
    expect(text).toContain('process_cpu_user_seconds_total');
  });

  it('refuses /metrics without the metrics token, and to everyone when no token is configured', async () => {
    for (const authorization of [undefined, 'Bearer wrong-token-of-some-length', `Basic ${METRICS_TOKEN}`]) {
      const res = await api.app.request('/metrics', { headers: authorization ? { authorization } : {} });
      expect(res.status, authorization).toBe(401);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
    }
    const closed = createApp({ ...api, config: { ...api.config, CUSTODIAN_METRICS_TOKEN: undefined } });
    expect((await closed.request('/metrics')).status).toBe(401);
    expect((await closed.request('/metrics', { headers: { authorization: 'Bearer ' } })).status).toBe(401);
  });

  it('logs method, route pattern, status, duration and user, never the query string', async () => {
    const { key, userId } = await seedPrincipal(api.database.db, 'auditor');
    await api.app.request('/v1/audit?targetId=customer-4711', { headers: bearer(key) });
    const lines = api.logLines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request' && l.userId === userId);
    expect(lines).toEqual([expect.objectContaining({ method: 'GET', route: '/v1/audit', status: 200, userId })]);
    expect(lines[0].durationMs).toEqual(expect.any(Number));
    expect(api.logLines.join('\n')).not.toContain('customer-4711');
  });

  it('hides an unexpected failure behind a generic 500 problem and logs it', async () => {
    const { app, logLines } = appWithoutDatabase();
    const res = await app.request('/v1/audit', { headers: bearer(`cust_0123abcd_${'A'.repeat(43)}`) });
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    const body = await res.json();
    expect(body).toEqual({
      type: 'urn:custodian:problem:internal',
      title: 'Internal server error',
      status: 500,
      detail: 'an unexpected error occurred',
      code: 'internal',
    });
    const failure = logLines.map((l) => JSON.parse(l)).find((l) => l.msg === 'request failed');
    expect(failure).toMatchObject({
      level: 50,
      method: 'GET',
      route: '/v1/audit',
      err: { cause: { code: 'ECONNREFUSED' } },
    });
    // Neither the presented key nor the query parameter derived from it (its hash) reaches the log.
    expect(logLines.join('\n')).not.toMatch(/AAAAAAAAAA|[0-9a-f]{64}/);
  });

  it('answers an unknown route with a 404 problem', async () => {
    const res = await api.app.request('/nope');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });
});

describe('logger', () => {
  it('redacts credentials and secrets wherever they are logged', () => {
    const lines: string[] = [];
    const logger = createLogger('info', { write: (line: string) => void lines.push(line) });
    logger.info({
      authorization: 'Bearer top',
      req: { headers: { authorization: 'Bearer nested', cookie: 'sid=1' } },
      apiKey: { key: 'k-secret' },
      user: { password: 'p-secret', token: 't-secret', name: 'kept' },
    });
    const [line] = lines;
    expect(line).not.toMatch(/top|nested|sid=1|k-secret|p-secret|t-secret/);
    expect(JSON.parse(line!)).toMatchObject({ authorization: '[redacted]', user: { name: 'kept' } });
  });
});

describe('API reference', () => {
  it('serves an OpenAPI 3.1 document with every route and the bearer scheme', async () => {
    const doc = await readJson<OpenApiDocument>(await api.app.request('/openapi.json'));
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/users',
        '/v1/users/{id}/api-keys',
        '/v1/api-keys/{id}/revoke',
        '/v1/audit',
        '/v1/audit/verify',
        '/healthz',
        '/readyz',
      ]),
    );
    expect(doc.paths['/v1/users']?.post).toMatchObject({ security: [{ bearerAuth: [] }], 'x-roles': ['admin'] });
    expect(doc.paths['/v1/audit']?.get?.['x-roles']).toEqual(['auditor']);
    expect(doc.paths['/healthz']?.get?.security).toEqual([]);
    expect(doc.components.schemas.Problem).toBeDefined();
  });

  it('serves the reference page (Swagger UI) and its assets from this origin: nothing from elsewhere', async () => {
    const res = await api.app.request('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await res.text();
    expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//);
    expect(html).not.toMatch(/<script>|<style/);
    const assets = [...html.matchAll(/(?:src|href)="(\/docs\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.sort()).toEqual(['/docs/init.js', '/docs/swagger-ui-bundle.js', '/docs/swagger-ui.css']);
    for (const path of assets) {
      const asset = await api.app.request(path);
      expect(asset.status, path).toBe(200);
      expect(asset.headers.get('content-type')).toMatch(path.endsWith('.css') ? /^text\/css/ : /^text\/javascript/);
    }
    const init = await (await api.app.request('/docs/init.js')).text();
    expect(init).toContain("url: '/openapi.json'");
    expect(init).toContain('validatorUrl: null');
    expect((await api.app.request('/docs/package.json')).status).toBe(404);
  });
});
