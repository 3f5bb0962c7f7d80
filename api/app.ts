import { createHash, timingSafeEqual } from 'node:crypto';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { routePattern } from '../runtime/metrics';
import type { Services } from '../runtime/services';
import { assertEveryV1RouteGuarded, authenticate, BEARER_SCHEME, streamsBody, type AuthEnv } from './auth';
import { codecRoutes } from './codec';
import { consoleApp } from './console';
import { docsPage } from './docs';
import { consentPage } from './pages/consent-page';
import { ApiError, invalidInput, problem, toProblem } from './errors';
import { incidentAckPage } from './pages/incident-ack-page';
import { requestPage } from './pages/request-page';
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

/**
 * Headers on every response, errors included: nothing is cached (API responses carry personal data and
 * keys), sniffed, framed or sent on as a Referer. A page with its own CSP (/docs) keeps it, framing refused.
 */
const hardeningHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  const headers = c.res.headers;
  const csp = headers.get('content-security-policy');
  headers.set(
    'content-security-policy',
    csp ? `${csp}; frame-ancestors 'none'` : "default-src 'none'; frame-ancestors 'none'",
  );
  if (!headers.has('cache-control')) headers.set('cache-control', 'no-store');
  headers.set('x-content-type-options', 'nosniff');
  headers.set('x-frame-options', 'DENY');
  headers.set('referrer-policy', 'no-referrer');
  headers.set('cross-origin-resource-policy', 'same-origin');
};

const digest = (text: string) => createHash('sha256').update(text).digest();

/** Whether `Authorization: Bearer <token>` carries the metrics token; never true when none is configured. */
const presentsToken = (header: string | undefined, token: string | undefined): boolean => {
  const presented = header ? /^Bearer +(\S+)$/i.exec(header)?.[1] : undefined;
  return token !== undefined && presented !== undefined && timingSafeEqual(digest(presented), digest(token));
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
    // Every route's every input (path, query, headers, body) passes here, valid or not.
    defaultHook: (result, c) => {
      const invalid = invalidInput(result, result.target);
      if (invalid) return problem(c, invalid);
    },
  });
  app.use('*', hardeningHeaders);
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
  // The subject's consent page: HTML, no API key (the link token is the credential).
  app.route('/consent', consentPage(services));

  // The acknowledgement link of an incident page: HTML, no API key (the signed, single-use link is the credential).
  app.route('/incident-ack', incidentAckPage(services));
  // The subject's side of data-subject requests: file, follow, verify, download once (signed links, no API key).
  app.route('/requests', requestPage(services));
  // The console: HTML pages behind a sign-in session (api/console).
  app.route('/console', consoleApp(services));
  // Temporal's remote codec for the Temporal UI (admin, auditor; CORS for the UI's origin).
  app.route('/codec', codecRoutes(services));
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
  // Closed unless CUSTODIAN_METRICS_TOKEN is set: process and route metrics are not for anyone who can connect.
  app.get('/metrics', async (c) => {
    if (!presentsToken(c.req.header('authorization'), config.CUSTODIAN_METRICS_TOKEN)) {
      throw ApiError.unauthorized(
        'credentials-invalid',
        'send Authorization: Bearer <CUSTODIAN_METRICS_TOKEN>; /metrics is closed when that is unset',
      );
    }
    return c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType });
  });

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
  app.route('/docs', docsPage());

  return app;
};

export type App = ReturnType<typeof createApp>;
