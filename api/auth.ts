import { createRoute, OpenAPIHono, type RouteConfig, type RouteHandler } from '@hono/zod-openapi';
import type { Handler, Hono, MiddlewareHandler } from 'hono';
import { createMiddleware } from 'hono/factory';
import type { ZodType } from 'zod';
import type { Db } from '../db/client';
import { findPrincipal, type Actor, type Principal } from '../activities/users';
import type { Role } from '../domain/roles';
import { ApiError, problemResponse } from './errors';

export type { Principal } from '../activities/users';
export type { Role } from '../domain/roles';

/** Hono environment of every /v1 handler: the authenticated caller. */
export interface AuthEnv {
  Variables: { principal: Principal };
}

export const BEARER_SCHEME = 'bearerAuth';

/** Resolves `Authorization: Bearer <key>` to `c.var.principal`; every other outcome is a 401. */
export const authenticate = (db: Db): MiddlewareHandler<AuthEnv> =>
  createMiddleware<AuthEnv>(async (c, next) => {
    const header = c.req.header('authorization');
    if (!header) throw ApiError.unauthorized('credentials-missing', 'send Authorization: Bearer <API key>');
    const presented = /^Bearer +(\S+)$/i.exec(header)?.[1];
    const principal = presented ? await findPrincipal(db, presented) : undefined;
    if (!principal) throw ApiError.unauthorized('credentials-invalid', 'the API key is malformed, unknown or revoked');
    c.set('principal', principal);
    await next();
  });

/** The audit actor for a request: the user and the API key they used. */
export const actorOf = (principal: Principal): Actor => ({
  actor: `user:${principal.userId}`,
  apiKeyId: principal.keyId,
});

export type Roles = readonly [Role, ...Role[]];

/** Role guards by identity, so a mounted app can be checked for routes that skipped them. */
const roleGuards = new WeakSet<Handler>();
const guardedRoutes = new WeakSet<object>();

/** Explicit allow-list: no role, `admin` included, implies another. */
const requireRoles = (roles: Roles): MiddlewareHandler<AuthEnv> => {
  const guard = createMiddleware<AuthEnv>(async (c, next) => {
    const principal = c.get('principal') as Principal | undefined;
    if (!principal) throw ApiError.unauthorized('credentials-missing', 'send Authorization: Bearer <API key>');
    if (!roles.includes(principal.role)) throw ApiError.forbidden(`this route requires the role ${roles.join(' or ')}`);
    await next();
  });
  roleGuards.add(guard);
  return guard;
};

declare const guarded: unique symbol;
/** A route that went through defineRoute: only these can be mounted under /v1. */
export type GuardedRoute = RouteConfig & { readonly [guarded]: Roles };

type RouteArgs = Omit<RouteConfig, 'middleware' | 'security'>;

/** Routes that stream their body to disk and enforce their own limit, as `METHOD /v1/path` patterns. */
const streamedBodies: RegExp[] = [];

/** Whether a request's body skips the app-wide body limit because its route streams it. */
export const streamsBody = (method: string, path: string) =>
  streamedBodies.some((pattern) => pattern.test(`${method.toUpperCase()} ${path}`));

/**
 * createRoute plus the roles allowed to call it, enforced by a middleware and shown in the OpenAPI
 * document. `streamedBody` exempts the route from the app-wide body limit (it must enforce its own).
 */
export const defineRoute = <P extends string, R extends RouteArgs & { path: P; roles: Roles; streamedBody?: true }>({
  roles,
  streamedBody,
  ...args
}: R) => {
  if (streamedBody) {
    const path = args.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+');
    streamedBodies.push(new RegExp(`^${args.method.toUpperCase()} /v1${path}$`));
  }
  const route = createRoute({
    ...args,
    middleware: requireRoles(roles),
    security: [{ [BEARER_SCHEME]: [] }],
    'x-roles': [...roles],
    responses: {
      // Typed as always present: an optional key would loosen the handler's response type to any Response.
      ...((args.request ? { 400: problemResponse('The request failed validation') } : {}) as {
        400: ReturnType<typeof problemResponse>;
      }),
      401: problemResponse('Missing, malformed, unknown or revoked API key'),
      403: problemResponse(`Requires the role ${roles.join(' or ')}`),
      ...args.responses,
    },
  });
  guardedRoutes.add(route);
  return route as typeof route & { readonly [guarded]: Roles };
};

/** An OpenAPI response entry with a JSON body. */
export const jsonResponse = <T extends ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

export interface Endpoint {
  route: GuardedRoute;
  handler: Handler;
}

/** Pairs a guarded route with its handler; the handler sees `c.var.principal` and the validated input. */
export const endpoint = <R extends GuardedRoute>(route: R, handler: RouteHandler<R>): Endpoint => ({
  route,
  handler: handler as Handler,
});

/** One resource's Hono app, built only from guarded endpoints; mount it under /v1 with `app.route`. */
export const v1Resource = (...endpoints: Endpoint[]): OpenAPIHono<AuthEnv> => {
  const resource = new OpenAPIHono<AuthEnv>();
  for (const { route, handler } of endpoints) {
    if (!guardedRoutes.has(route))
      throw new Error(`${route.method.toUpperCase()} ${route.path} declares no roles: use defineRoute`);
    resource.openapi(route, handler as never);
  }
  return resource;
};

/** Startup check: every /v1 route handler must run behind a role guard, whatever way it was added. */
export const assertEveryV1RouteGuarded = (app: Pick<Hono, 'routes'>) => {
  const routes = app.routes.filter((r) => r.path.startsWith('/v1/') && r.method !== 'ALL');
  const unguarded = new Set(routes.map((r) => `${r.method} ${r.path}`));
  for (const r of routes) if (roleGuards.has(r.handler)) unguarded.delete(`${r.method} ${r.path}`);
  if (unguarded.size > 0) throw new Error(`/v1 routes without roles: ${[...unguarded].join(', ')}`);
};
