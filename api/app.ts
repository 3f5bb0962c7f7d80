import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { routePattern } from '../runtime/metrics';
import type { Services } from '../runtime/services';
import { assertEveryV1RouteGuarded, authenticate, BEARER_SCHEME, streamsBody, type AuthEnv } from './auth';
import { DOCS_CSP, DOCS_HTML } from './docs';
import { ApiError, problem, toProblem, validationError } from './errors';
import { resources } from './resources';

const READY_TIMEOUT_MS = 2_000;
const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

const withTimeout = async <T>(work: () => Promise<T>, ms: number): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work(), timeout]);
  } finally {
    clearTimeout(timer);
  }
};

const Health = z.object({ status: z.literal('ok') }).openapi('Health');
const Readiness = z
  .object({
    status: z.enum(['ok', 'unavailable']),
    checks: z.record(z.string(), z.enum(['ok', 'failed'])),
    failed: z.array(z.string()),
  })
  .openapi('Readiness');

const healthz = createRoute({
  method: 'get',
  path: '/healthz',
  summary: 'Liveness',
  security: [],
  responses: { 200: { description: 'The process is up', content: { 'application/json': { schema: Health } } } },
});

const readyz = createRoute({
  method: 'get',
  path: '/readyz',
  summary: 'Readiness: Postgres and Temporal answer within 2 s',
  security: [],
  responses: {
    200: { description: 'Ready', content: { 'application/json': { schema: Readiness } } },
    503: {
      description: 'A dependency failed; `failed` names it',
      content: { 'application/json': { schema: Readiness } },
    },
  },
});

/** Builds the HTTP API over the process's services; every resource receives the same services. */
export const createApp = (services: Services) => {
  const { logger, metrics, database, temporal, config } = services;
  const app = new OpenAPIHono<{ Variables: Partial<AuthEnv['Variables']> }>({
    defaultHook: (result, c) => {
      if (!result.success) return problem(c, validationError(result.error, result.target));
    },
  });
  app.onError((err, c) => toProblem(c, err, logger, routePattern(c)));
  app.notFound((c) => problem(c, ApiError.notFound('no route for this method and path')));

  // Method, route pattern, status, duration and user only: paths' IDs, query strings and bodies stay out.
  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    const route = routePattern(c);
    const status = c.res.status;
    metrics.observeRequest({ method: c.req.method, route, status, seconds });
    const entry = { method: c.req.method, route, status, durationMs: Math.round(seconds * 1000) };
    logger[QUIET_ROUTES.has(route) ? 'debug' : 'info']({ ...entry, userId: c.get('principal')?.userId }, 'request');
  });
  const maxSize = config.CUSTODIAN_BODY_LIMIT_BYTES;
  const limitBody = bodyLimit({ maxSize, onError: (c) => problem(c, ApiError.payloadTooLarge(maxSize)) });
  app.use('*', (c, next) => (streamsBody(c.req.method, c.req.path) ? next() : limitBody(c, next)));
  app.use('/v1/*', authenticate(database.db));

  for (const resource of resources) app.route('/v1', resource(services));
  assertEveryV1RouteGuarded(app);

  app.openapi(healthz, (c) => c.json({ status: 'ok' as const }, 200));
  app.openapi(readyz, async (c) => {
    const probes = {
      postgres: () => database.sql`select 1`.then(() => undefined),
      temporal: () =>
        temporal.connection.withDeadline(Date.now() + READY_TIMEOUT_MS, () =>
          temporal.connection.workflowService.getSystemInfo({}),
        ),
    };
    const outcomes = await Promise.all(
      Object.entries(probes).map(async ([name, probe]) => {
        try {
          await withTimeout(probe, READY_TIMEOUT_MS);
          return [name, 'ok'] as const;
        } catch (err) {
          logger.warn({ check: name, reason: err instanceof Error ? err.message : String(err) }, 'readiness failed');
          return [name, 'failed'] as const;
        }
      }),
    );
    const failed = outcomes.filter(([, outcome]) => outcome === 'failed').map(([name]) => name);
    const body = { checks: Object.fromEntries(outcomes), failed };
    return failed.length === 0
      ? c.json({ status: 'ok' as const, ...body }, 200)
      : c.json({ status: 'unavailable' as const, ...body }, 503);
  });
  app.get('/metrics', async (c) =>
    c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }),
  );

  app.openAPIRegistry.registerComponent('securitySchemes', BEARER_SCHEME, {
    type: 'http',
    scheme: 'bearer',
    description: 'An API key: `cust_<prefix>_<secret>`',
  });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Custodian API',
      version: '1',
      description: 'Customer-data lifecycle after a transfer. Errors are RFC 9457 application/problem+json.',
    },
  });
  app.get('/docs', (c) => c.html(DOCS_HTML, 200, { 'content-security-policy': DOCS_CSP }));

  return app;
};

export type App = ReturnType<typeof createApp>;
