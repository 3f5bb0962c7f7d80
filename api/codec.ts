import type { Payload } from '@temporalio/common';
import { Hono, type Context } from 'hono';
import { getCookie } from 'hono/cookie';
import { cors } from 'hono/cors';
import { z } from 'zod';
import { findPrincipal } from '../activities/users';
import type { Role } from '../domain/roles';
import { dataConverterFor } from '../runtime/payload-codec';
import type { Services } from '../runtime/services';
import { findSession, sessionCookieName, sessionTerms } from './console/sessions';
import { ApiError, problem } from './errors';

/** Who may read decoded payloads in the Temporal UI (inputs carry IDs, counts and hashes only). */
export const CODEC_ROLES: readonly Role[] = ['admin', 'auditor'];

const MAX_PAYLOADS = 10_000;
const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');
/** Temporal's remote codec protocol: payloads as JSON, metadata values and data base64. */
const CodecBody = z
  .object({
    payloads: z
      .array(z.object({ metadata: z.record(z.string(), Base64).optional(), data: Base64.optional() }))
      .max(MAX_PAYLOADS),
  })
  .strict();
type WirePayload = { metadata?: Record<string, string>; data?: string };

const fromWire = (p: WirePayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});
const toWire = (p: Payload): WirePayload => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')]),
  ),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

/**
 * `POST /codec/decode` and `/codec/encode`, Temporal's remote codec protocol, so the Temporal UI (started by
 * `custodian start` with `--ui-codec-endpoint`) shows workflow inputs and results as JSON. For admins and auditors,
 * by bearer API key or a console session cookie (the UI's "include cross-origin credentials"); CORS for the Temporal
 * UI's origin only (CUSTODIAN_CODEC_CORS_ORIGIN, default the dev server's UI on localhost and 127.0.0.1).
 */
export const codecRoutes = (services: Services) => {
  const { config, clock } = services;
  const { db } = services.database;
  const codecs = dataConverterFor(services.keyring).payloadCodecs;
  const origins = new Set(
    config.CUSTODIAN_CODEC_CORS_ORIGIN
      ? [new URL(config.CUSTODIAN_CODEC_CORS_ORIGIN).origin]
      : [`http://localhost:${config.TEMPORAL_UI_PORT}`, `http://127.0.0.1:${config.TEMPORAL_UI_PORT}`],
  );
  const cookie = sessionCookieName(config);
  const terms = sessionTerms(config);

  const app = new Hono();
  app.use(
    '*',
    cors({
      origin: (origin) => (origins.has(origin) ? origin : null),
      allowMethods: ['POST', 'OPTIONS'],
      allowHeaders: ['content-type', 'authorization', 'x-namespace'],
      credentials: true,
      maxAge: 600,
    }),
  );

  const authorize = async (c: Context) => {
    const header = c.req.header('authorization');
    const presented = header ? /^Bearer +(\S+)$/i.exec(header)?.[1] : undefined;
    const principal = presented
      ? await findPrincipal(db, presented)
      : (await findSession(db, getCookie(c, cookie), terms, clock()))?.principal;
    if (!principal)
      throw ApiError.unauthorized(
        header || getCookie(c, cookie) ? 'credentials-invalid' : 'credentials-missing',
        'send Authorization: Bearer <API key>, or sign in to the console',
      );
    if (!CODEC_ROLES.includes(principal.role))
      throw ApiError.forbidden(`the codec requires the role ${CODEC_ROLES.join(' or ')}`);
  };

  const handle = (direction: 'encode' | 'decode') => async (c: Context) => {
    await authorize(c);
    // JSON only: a cross-site text/plain form cannot pass for a codec request.
    if (c.req.header('content-type')?.split(';')[0]?.trim().toLowerCase() !== 'application/json')
      return problem(c, new ApiError(415, 'unsupported-media-type', 'Unsupported media type', 'send application/json'));
    let raw: unknown;
    try {
      raw = await c.req.json();
    } catch {
      return problem(c, ApiError.badRequest('the body is not JSON', [{ path: 'payloads', message: 'required' }]));
    }
    const parsed = CodecBody.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return problem(
        c,
        ApiError.badRequest('invalid codec request', [{ path: issue.path.join('.'), message: issue.message }]),
      );
    }
    let payloads = parsed.data.payloads.map(fromWire);
    try {
      if (direction === 'encode') for (const codec of codecs) payloads = await codec.encode(payloads);
      else for (const codec of [...codecs].reverse()) payloads = await codec.decode(payloads);
    } catch (err) {
      // An unknown key or a payload that fails authentication: the caller's payload, not our failure.
      return problem(
        c,
        new ApiError(422, 'payload-undecodable', 'Unprocessable', err instanceof Error ? err.message : String(err)),
      );
    }
    return c.json({ payloads: payloads.map(toWire) }, 200);
  };
  app.post('/encode', handle('encode'));
  app.post('/decode', handle('decode'));
  return app;
};
