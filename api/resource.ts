import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Services } from '../runtime/services';
import type { AuthEnv } from './auth';

/**
 * A resource: one Hono app of guarded endpoints (`v1Resource` in auth.ts), mounted under /v1. It takes
 * the process's services and destructures what it uses; routes never import the app.
 */
export type Resource = (services: Services) => OpenAPIHono<AuthEnv>;
