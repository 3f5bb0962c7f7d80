import { z } from '@hono/zod-openapi';
import { DrizzleQueryError } from 'drizzle-orm';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ZodError } from 'zod';
import { DomainError } from '../domain/errors';
import { isUnstorableText, UNSTORABLE_TEXT } from '../domain/text';
import type { Logger } from '../runtime/logger';

export interface FieldError {
  path: string;
  message: string;
}

/** An error meant for the client: its `code` is stable and machine-readable, its detail is safe to show. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    readonly title: string,
    readonly detail: string,
    readonly fields?: FieldError[],
    /** Sent as `Retry-After` (seconds) on a 429 or 503. */
    readonly retryAfterSeconds?: number,
  ) {
    super(detail);
  }

  static badRequest = (detail: string, fields?: FieldError[]) =>
    new ApiError(400, 'invalid-request', 'Invalid request', detail, fields);
  static unauthorized = (code: 'credentials-missing' | 'credentials-invalid', detail: string) =>
    new ApiError(401, code, 'Unauthorized', detail);
  static forbidden = (detail: string) => new ApiError(403, 'forbidden', 'Forbidden', detail);
  static notFound = (what: string) => new ApiError(404, 'not-found', 'Not found', `${what} was not found`);
  static conflict = (code: string, detail: string) => new ApiError(409, code, 'Conflict', detail);
  static payloadTooLarge = (limitBytes: number) =>
    new ApiError(413, 'payload-too-large', 'Payload too large', `the request body exceeds ${limitBytes} bytes`);
  static tooManyRequests = (detail: string, retryAfterSeconds: number) =>
    new ApiError(429, 'rate-limited', 'Too many requests', detail, undefined, retryAfterSeconds);
}

/** RFC 9457 problem details, as sent on the wire and described in the OpenAPI document. */
export const Problem = z
  .object({
    type: z.string().openapi({ example: 'urn:custodian:problem:invalid-request' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().openapi({ description: 'Stable machine-readable error code' }),
    fields: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .openapi({ description: 'Every failing field, by path' }),
  })
  .openapi('Problem');
export type Problem = z.infer<typeof Problem>;

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** An OpenAPI response entry for a problem. */
export const problemResponse = (description: string) => ({
  description,
  content: { [PROBLEM_CONTENT_TYPE]: { schema: Problem } },
});

export const problem = (c: Context, err: ApiError): Response => {
  const body: Problem = {
    type: `urn:custodian:problem:${err.code}`,
    title: err.title,
    status: err.status,
    detail: err.detail,
    code: err.code,
    ...(err.fields ? { fields: err.fields } : {}),
  };
  const headers: Record<string, string> = { 'content-type': PROBLEM_CONTENT_TYPE };
  if (err.status === 401) headers['www-authenticate'] = 'Bearer';
  if (err.retryAfterSeconds !== undefined) headers['retry-after'] = String(err.retryAfterSeconds);
  return c.body(JSON.stringify(body), err.status, headers);
};

const ZOD_TARGETS: Record<string, string> = { json: 'body', form: 'body', param: 'path', query: 'query' };

/** Every failing field path; an unknown key in a strict object names the key itself. */
export const fieldErrors = (error: ZodError, target?: string): FieldError[] =>
  error.issues.flatMap((issue) => {
    const base = issue.path.map(String);
    const at = (path: string[]) => (path.length ? path.join('.') : (ZOD_TARGETS[target ?? ''] ?? 'body'));
    if (issue.code === 'unrecognized_keys')
      return issue.keys.map((key) => ({ path: at([...base, key]), message: 'unknown field' }));
    return [{ path: at(base), message: issue.message }];
  });

export const validationError = (error: ZodError, target?: string): ApiError => {
  const fields = fieldErrors(error, target);
  return ApiError.badRequest(`${fields.length} field(s) failed validation`, fields);
};

const MAX_DEPTH = 64;

/**
 * Every string (value or key) in validated input that could not be stored as sent, by path. Validation
 * hooks run it over every target of every route, so no handler ever passes such a string to the database.
 */
export const unstorableFields = (value: unknown, target?: string): FieldError[] => {
  const found: FieldError[] = [];
  const at = (path: string[]) => (path.length ? path.join('.') : (ZOD_TARGETS[target ?? ''] ?? 'body'));
  const walk = (node: unknown, path: string[]) => {
    if (typeof node === 'string') {
      if (isUnstorableText(node)) found.push({ path: at(path), message: UNSTORABLE_TEXT });
    } else if (Array.isArray(node)) {
      if (path.length < MAX_DEPTH) node.forEach((item, i) => walk(item, [...path, String(i)]));
    } else if (node !== null && typeof node === 'object' && path.length < MAX_DEPTH) {
      for (const [key, item] of Object.entries(node)) {
        // The key itself is not echoed: it cannot be shown faithfully either.
        if (isUnstorableText(key)) found.push({ path: at(path), message: `a key ${UNSTORABLE_TEXT}` });
        else walk(item, [...path, key]);
      }
    }
  };
  walk(value, []);
  return found;
};

/** The problem for a validation hook's result: zod's issues, or strings that cannot be stored; else nothing. */
export const invalidInput = (
  result: { success: true; data: unknown } | { success: false; error: ZodError },
  target?: string,
): ApiError | undefined => {
  if (!result.success) return validationError(result.error, target);
  const fields = unstorableFields(result.data, target);
  return fields.length ? ApiError.badRequest(`${fields.length} field(s) cannot be stored`, fields) : undefined;
};

const HTTP_EXCEPTION_CODES: Partial<Record<number, string>> = {
  400: 'malformed-request',
  413: 'payload-too-large',
  415: 'unsupported-media-type',
};

/**
 * What of an unexpected error may be logged. Drizzle puts query parameters in its message and
 * Postgres echoes rejected values in its own, so for those only codes, names and frames remain.
 */
export const loggableError = (err: unknown, depth = 0): Record<string, unknown> => {
  if (!(err instanceof Error)) return { type: typeof err };
  const frames = err.stack
    ?.split('\n')
    .filter((line) => /^\s+at /.test(line))
    .join('\n');
  const cause = err.cause !== undefined && depth < 3 ? { cause: loggableError(err.cause, depth + 1) } : {};
  if (err instanceof DrizzleQueryError) return { name: err.name, stack: frames, ...cause };
  const { code, severity, constraint_name, table_name, column_name } = err as Error & Record<string, unknown>;
  if (severity !== undefined) return { name: err.name, code, constraint_name, table_name, column_name, stack: frames };
  return { name: err.name, code, message: err.message, stack: err.stack, ...cause };
};

const DOMAIN_STATUS = { 'not-found': 404, conflict: 409, invalid: 400 } as const;
const DOMAIN_TITLE = { 'not-found': 'Not found', conflict: 'Conflict', invalid: 'Invalid request' } as const;

/** A business rule's refusal, as the problem the client sees. */
export const fromDomain = (err: DomainError): ApiError =>
  new ApiError(DOMAIN_STATUS[err.kind], err.code, DOMAIN_TITLE[err.kind], err.message);

/** Maps anything thrown to a problem; an unexpected error is logged (never the request body) and hidden. */
export const toProblem = (c: Context, err: unknown, logger: Logger, route: string): Response => {
  if (err instanceof ApiError) return problem(c, err);
  if (err instanceof DomainError) return problem(c, fromDomain(err));
  if (err instanceof ZodError) return problem(c, validationError(err));
  if (err instanceof HTTPException && err.status < 500) {
    const code = HTTP_EXCEPTION_CODES[err.status] ?? 'http-error';
    return problem(c, new ApiError(err.status, code, err.message || code, err.message || code));
  }
  logger.error({ err: loggableError(err), method: c.req.method, route }, 'request failed');
  return problem(c, new ApiError(500, 'internal', 'Internal server error', 'an unexpected error occurred'));
};
