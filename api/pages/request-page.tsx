import { and, desc, eq, isNull } from 'drizzle-orm';
import { Hono, type Context } from 'hono';
import type { JSX } from 'hono/jsx/jsx-runtime';
import { z } from 'zod';
import { appendAudit } from '../../activities/audit';
import { openLinkExport } from '../../activities/export-crypto';
import {
  requestLinkToken,
  requestLinkUrl,
  verifyRequestLink,
  type RequestLinkPurpose,
} from '../../activities/request-links';
import { requestEvents, requestExports, subjects } from '../../db/schema';
import { FieldName } from '../../domain/catalog';
import { notificationLocale } from '../../domain/notification-templates';
import { COMPLAINT_CATEGORIES, REQUEST_TYPES, RequestFiling, type RequestActor } from '../../domain/request';
import { StorableText } from '../../domain/text';
import type { Services } from '../../runtime/services';
import { verifyUpdate } from '../../workflows/request';
import { ApiError, loggableError } from '../errors';
import { requestUpdates } from '../request-updates';
import {
  FormPage,
  PAGE_CSP,
  ProblemPage,
  StatusPage,
  VerifyPage,
  type RequestPageLanguage,
  type RequestPageProblem,
} from './request-page-view';

const FORM_TYPE = 'application/x-www-form-urlencoded';

/** What the subject's form posts (no JavaScript: every field is a plain form field). */
const RequestForm = z
  .object({
    type: z.enum(REQUEST_TYPES),
    details: z.union([z.literal(''), StorableText(1, 20_000)]).optional(),
    fields: z.string().max(500).optional(),
    category: z.enum(COMPLAINT_CATEGORIES).optional(),
  })
  .strict();

const STATUS: Record<RequestPageProblem, 400 | 403 | 404 | 409 | 410> = {
  invalid: 403,
  expiredLink: 410,
  served: 410,
  bad: 400,
  notFound: 404,
  conflict: 409,
};

const render = async (c: Context, status: 200 | 400 | 403 | 404 | 409 | 410 | 500, page: JSX.Element) =>
  c.html(`<!doctype html>${await page.toString()}`, status, {
    'content-security-policy': PAGE_CSP,
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
    'x-robots-tag': 'noindex, nofollow',
  });

/**
 * The subject's side at `/requests`, outside /v1 and without an API key (the signed link is the credential):
 * `GET/POST /requests/new?token=` files a request (the form link names the subject), `GET /requests/{token}` shows
 * its status and the answer, `GET/POST /requests/verify/{token}` confirms the requester's identity, and
 * `GET /requests/exports/{token}` serves an export once. zh-CN or en by the subject's locale; no JavaScript.
 */
export const requestPage = (services: Services) => {
  const { keyring, clock, logger, config } = services;
  const { db } = services.database;
  const updates = requestUpdates(services);

  const langOf = async (subjectId: string): Promise<RequestPageLanguage> => {
    const [s] = await db.select({ locale: subjects.locale }).from(subjects).where(eq(subjects.id, subjectId));
    return notificationLocale(s?.locale);
  };
  const problem = (c: Context, p: RequestPageProblem, lang: RequestPageLanguage = 'en') =>
    render(c, STATUS[p], <ProblemPage lang={lang} problem={p} />);
  const check = (purpose: RequestLinkPurpose, token: string) => verifyRequestLink(keyring, purpose, token, clock());
  const format = (lang: RequestPageLanguage, jurisdiction: string) => {
    const f = new Intl.DateTimeFormat(lang, {
      dateStyle: 'long',
      timeStyle: 'short',
      timeZone: jurisdiction === 'CN' ? 'Asia/Shanghai' : 'UTC',
    });
    return (d: Date) => f.format(d);
  };
  const readForm = async (c: Context) => {
    if (c.req.header('content-type')?.split(';')[0]?.trim().toLowerCase() !== FORM_TYPE) return undefined;
    const params = new URLSearchParams(await c.req.text());
    const keys = [...params.keys()];
    if (new Set(keys).size !== keys.length) return undefined;
    const parsed = RequestForm.safeParse(Object.fromEntries(params));
    return parsed.success ? parsed.data : undefined;
  };
  const statusLink = (requestId: string) =>
    requestLinkUrl(
      '',
      'status',
      requestLinkToken(keyring, 'status', {
        id: requestId,
        expiresAt: clock().getTime() + config.CUSTODIAN_REQUEST_LINK_TTL,
      }),
    );

  const app = new Hono();
  app.onError((err, c) => {
    logger.error({ err: loggableError(err), route: '/requests' }, 'request page failed');
    return render(c, 500, <ProblemPage lang="en" problem="notFound" />);
  });

  app.get('/new', async (c) => {
    const verdict = check('form', c.req.query('token') ?? '');
    if (!verdict.valid) return problem(c, verdict.reason === 'expired' ? 'expiredLink' : 'invalid');
    const lang = await langOf(verdict.claims.id);
    return render(c, 200, <FormPage lang={lang} action={`/requests/new?token=${c.req.query('token')}`} />);
  });

  app.post('/new', async (c) => {
    const token = c.req.query('token') ?? '';
    const verdict = check('form', token);
    if (!verdict.valid) return problem(c, verdict.reason === 'expired' ? 'expiredLink' : 'invalid');
    const subjectId = verdict.claims.id;
    const lang = await langOf(subjectId);
    const form = await readForm(c);
    const fields = (form?.fields ?? '')
      .split(/[,，\s]+/)
      .filter(Boolean)
      .map((f) => f.trim());
    const filing = form
      ? RequestFiling.safeParse({
          type: form.type,
          subject: { id: subjectId },
          channel: 'page',
          ...(form.details ? { details: form.details } : {}),
          ...(fields.length && (form.type === 'objection' || form.type === 'correction') ? { fields } : {}),
          ...(form.type === 'complaint' && form.category ? { category: form.category } : {}),
        })
      : undefined;
    if (!filing?.success || fields.some((f) => !FieldName.safeParse(f).success))
      return render(c, 400, <FormPage lang={lang} action={`/requests/new?token=${token}`} error />);
    try {
      const filed = await updates.file(filing.data, { subjectId });
      // The workflow's first activity writes the row the status page reads: wait for it (briefly) before redirecting.
      for (let waited = 0; waited < 10_000 && !(await updates.row(filed.id)); waited += 100)
        await new Promise((r) => setTimeout(r, 100));
      return c.redirect(statusLink(filed.id), 303);
    } catch (err) {
      if (err instanceof ApiError && err.status < 500) return problem(c, err.status === 409 ? 'conflict' : 'bad', lang);
      throw err;
    }
  });

  app.get('/verify/:token', async (c) => {
    const verdict = check('verify', c.req.param('token'));
    if (!verdict.valid) return problem(c, verdict.reason === 'expired' ? 'expiredLink' : 'invalid');
    const row = await updates.row(verdict.claims.id);
    if (!row) return problem(c, 'notFound');
    const lang = await langOf(row.subjectId);
    if (row.status !== 'verifying') return render(c, 200, <VerifyPage lang={lang} done />);
    return render(c, 200, <VerifyPage lang={lang} action={`/requests/verify/${c.req.param('token')}`} />);
  });

  app.post('/verify/:token', async (c) => {
    const verdict = check('verify', c.req.param('token'));
    if (!verdict.valid) return problem(c, verdict.reason === 'expired' ? 'expiredLink' : 'invalid');
    const row = await updates.row(verdict.claims.id);
    if (!row) return problem(c, 'notFound');
    const lang = await langOf(row.subjectId);
    const by: RequestActor = {
      actor: `subject:${row.subjectId}`,
      apiKeyId: null,
      role: 'subject',
      method: 'page-link',
    };
    try {
      await updates.run(row.id, by, {}, (h) => h.executeUpdate(verifyUpdate, { args: [by, { method: 'link' }] }));
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) return problem(c, 'conflict', lang);
      throw err;
    }
    return render(c, 200, <VerifyPage lang={lang} done />);
  });

  app.get('/exports/:token', async (c) => {
    const verdict = check('export', c.req.param('token'));
    if (!verdict.valid) return problem(c, verdict.reason === 'expired' ? 'expiredLink' : 'invalid');
    const [row] = await db.select().from(requestExports).where(eq(requestExports.id, verdict.claims.id));
    if (!row || row.delivery !== 'link') return problem(c, 'notFound');
    const lang = await langOf(row.subjectId);
    const expired = row.linkExpiresAt !== null && row.linkExpiresAt.getTime() <= clock().getTime();
    if (row.servedAt || !row.sealed || !row.wrappedKey || expired) return problem(c, 'served', lang);
    const document = openLinkExport(keyring, row.id, row.wrappedKey, row.sealed);
    if (document === undefined) return problem(c, 'served', lang);
    // Served once: the row is claimed and its sealed copy cleared in one statement; a second click finds it gone.
    const [claimed] = await db
      .update(requestExports)
      .set({ servedAt: clock(), sealed: null, wrappedKey: null })
      .where(and(eq(requestExports.id, row.id), isNull(requestExports.servedAt)))
      .returning({ id: requestExports.id });
    if (!claimed) return problem(c, 'served', lang);
    await appendAudit(db, {
      actor: `subject:${row.subjectId}`,
      action: 'request.export-served',
      targetType: 'request',
      targetId: row.requestId,
      details: { exportId: row.id, sha256: row.sha256, bytes: row.bytes },
      idempotencyKey: `request-export-served:${row.id}`,
    });
    return c.body(document, 200, {
      'content-type': 'application/json; charset=utf-8',
      'content-disposition': `attachment; filename="personal-information-${row.requestId}.json"`,
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
    });
  });

  app.get('/:token', async (c) => {
    const verdict = check('status', c.req.param('token'));
    if (!verdict.valid) return problem(c, verdict.reason === 'expired' ? 'expiredLink' : 'invalid');
    const row = await updates.row(verdict.claims.id);
    if (!row) return problem(c, 'notFound');
    const lang = await langOf(row.subjectId);
    const events = await db
      .select()
      .from(requestEvents)
      .where(eq(requestEvents.requestId, row.id))
      .orderBy(desc(requestEvents.at));
    const textOf = (type: string) => events.find((e) => e.type === type && e.textId)?.textId ?? undefined;
    const ids = { answer: textOf('fulfilled'), reasons: textOf('refused'), extension: textOf('extended') };
    const clear = await updates.texts.read(Object.values(ids));
    const body = (id: string | undefined) => (id ? (clear.get(id)?.body ?? null) : null);
    const fulfilled = events.find((e) => e.type === 'fulfilled');
    const outcome = (fulfilled?.details as { outcome?: string } | undefined)?.outcome;
    return render(
      c,
      200,
      <StatusPage
        lang={lang}
        format={format(lang, row.jurisdiction)}
        f={{
          id: row.id,
          type: row.type,
          status: row.status,
          receivedAt: row.receivedAt,
          dueAt: row.dueAt,
          answer: row.type === 'objection' ? outcome : (body(ids.answer) ?? outcome ?? null),
          reasons: body(ids.reasons),
          extensionReason: body(ids.extension),
          statement: row.type === 'objection' && outcome !== 'corrected' ? body(ids.answer) : null,
        }}
      />,
    );
  });

  app.all('*', (c) => problem(c, 'notFound'));
  return app;
};
