import { randomBytes } from 'node:crypto';
import { and, eq, isNull } from 'drizzle-orm';
import { Hono, type Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { incidentPages, incidents, incidentTexts, users } from '../../db/schema';
import { verifyIncidentAckToken } from '../../activities/incidents';
import type { Services } from '../../runtime/services';
import { ackUpdate } from '../../workflows/incident';
import { ApiError, loggableError } from '../errors';
import { incidentUpdates } from '../incident-updates';
import {
  sameSecret,
  sessionCookieName,
  sessionCookieOptions,
  sessionTerms,
  startLinkSession,
} from '../console/sessions';

/** Inline styles only; the form posts back to this same URL. */
export const ACK_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'";

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);

const PROBLEMS = {
  invalid: [403, 'This link is not valid.'],
  expired: [410, 'This link has expired. Acknowledge through the API or a newer page.'],
  used: [410, 'This link has been used already.'],
  'not-responder': [403, 'Only an active responder can acknowledge an incident.'],
  'not-found': [404, 'No such incident.'],
  closed: [409, 'The incident is closed.'],
  internal: [500, 'Something went wrong; nothing was changed. Try again, or acknowledge through the API.'],
} as const;
type Problem = keyof typeof PROBLEMS;

const page = (title: string, body: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
  `<title>${escape(title)}</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem}` +
  `button{font:inherit;padding:.75rem 1.5rem}</style></head><body>${body}</body></html>`;

/** The incident in the console (sign-in there with an API key): timeline, notes, status. */
const consoleLink = (incidentId: string) =>
  `<p><a href="/console/incidents/${escape(incidentId)}">Open the incident in the console</a></p>`;

/** Signs the paged responder in to the console for this incident only, with the link instead of an API key. */
const signInForm = (token: string, csrf: string) =>
  `<form method="post" action="/incident-ack/${escape(token)}/console"><input type="hidden" name="_csrf" value="${escape(csrf)}">` +
  `<button type="submit">Work the incident in the console (signs you in for this incident)</button></form>`;

const render = (c: Context, status: 200 | 403 | 404 | 409 | 410 | 500, html: string) =>
  c.html(html, status, {
    'content-security-policy': ACK_PAGE_CSP,
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
    'x-robots-tag': 'noindex, nofollow',
  });

const problemPage = (c: Context, problem: Problem) => {
  const [status, text] = PROBLEMS[problem];
  return render(c, status, page('Incident acknowledgement', `<h1>Incident acknowledgement</h1><p>${escape(text)}</p>`));
};

/**
 * The acknowledgement link of a page, at `/incident-ack/{token}` outside /v1 and without an API key: the token
 * (HMAC, one page to one responder, expiring) is the credential, and it works once. The GET only shows what will
 * be acknowledged; the POST acknowledges through the workflow's `ack` update as the paged responder (method
 * `page-link`), audited like an acknowledgement through the API.
 */
export const incidentAckPage = (services: Services) => {
  const { keyring, clock, logger, config } = services;
  const { db } = services.database;
  const updates = incidentUpdates(services);
  const cookieOptions = sessionCookieOptions(config);
  const terms = sessionTerms(config);
  // Login CSRF for the console sign-in: the form's token must match this browser's cookie (double submit).
  const PRE = cookieOptions.secure ? '__Host-custodian-page-link' : 'custodian-page-link';

  const load = async (
    token: string,
  ): Promise<
    | { problem: Problem }
    | {
        pageId: string;
        incidentId: string;
        userId: string;
        title: string;
        severity: string;
        status: string;
        level: number;
        used: boolean;
        role: string | undefined;
      }
  > => {
    const verdict = verifyIncidentAckToken(keyring, token, clock());
    if (!verdict.valid) return { problem: verdict.reason === 'expired' ? 'expired' : 'invalid' };
    const [row] = await db
      .select({
        page: incidentPages,
        incident: incidents,
        title: incidentTexts.body,
        role: users.role,
        disabledAt: users.disabledAt,
      })
      .from(incidentPages)
      .innerJoin(incidents, eq(incidents.id, incidentPages.incidentId))
      .leftJoin(incidentTexts, eq(incidentTexts.id, incidents.titleTextId))
      .leftJoin(users, eq(users.id, incidentPages.userId))
      .where(eq(incidentPages.id, verdict.claims.pageId));
    if (!row) return { problem: 'not-found' };
    return {
      pageId: row.page.id,
      incidentId: row.incident.id,
      userId: row.page.userId,
      title: row.title ?? '',
      severity: row.incident.severity,
      status: row.incident.status,
      level: row.page.level,
      used: row.page.linkUsedAt !== null,
      role: row.disabledAt ? undefined : (row.role ?? undefined),
    };
  };

  const app = new Hono();
  app.onError((err, c) => {
    logger.error({ err: loggableError(err), route: '/incident-ack/:token' }, 'acknowledgement page failed');
    return problemPage(c, 'internal');
  });

  app.get('/:token', async (c) => {
    const p = await load(c.req.param('token'));
    if ('problem' in p) return problemPage(c, p.problem);
    if (p.used) return problemPage(c, 'used');
    if (p.role !== 'responder') return problemPage(c, 'not-responder');
    const pre = randomBytes(32).toString('base64url');
    setCookie(c, PRE, pre, { ...cookieOptions, maxAge: 3600 });
    return render(
      c,
      200,
      page(
        `Acknowledge incident`,
        `<h1>Acknowledge incident</h1><p><strong>[${escape(p.severity)}]</strong> ${escape(p.title)}</p>` +
          `<p>Status: ${escape(p.status)}. You were paged at escalation level ${p.level}.</p>` +
          `<form method="post"><button type="submit">Acknowledge</button></form>` +
          (p.status === 'closed' ? '' : signInForm(c.req.param('token'), pre)) +
          consoleLink(p.incidentId),
      ),
    );
  });

  app.post('/:token', async (c) => {
    const p = await load(c.req.param('token'));
    if ('problem' in p) return problemPage(c, p.problem);
    if (p.role !== 'responder') return problemPage(c, 'not-responder');
    // Single use: whoever claims the link first acknowledges with it.
    const [claimed] = await db
      .update(incidentPages)
      .set({ linkUsedAt: clock() })
      .where(and(eq(incidentPages.id, p.pageId), isNull(incidentPages.linkUsedAt)))
      .returning({ id: incidentPages.id });
    if (!claimed) return problemPage(c, 'used');
    const by = {
      actor: `user:${p.userId}`,
      userId: p.userId,
      apiKeyId: null,
      role: p.role,
      method: 'page-link' as const,
    };
    try {
      const r = await updates.run(p.incidentId, by, {}, (h) => h.executeUpdate(ackUpdate, { args: [by] }));
      const text = r.acknowledged
        ? 'Acknowledged. The escalation has stopped.'
        : `Already acknowledged by ${r.acknowledgedBy}; nothing changed.`;
      return render(
        c,
        200,
        page(
          'Incident acknowledged',
          `<h1>Incident acknowledgement</h1><p>${escape(text)}</p>${consoleLink(p.incidentId)}`,
        ),
      );
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) return problemPage(c, 'closed');
      if (err instanceof ApiError && err.status === 403) return problemPage(c, 'not-responder');
      // Nothing was acknowledged: the link may be used again.
      await db.update(incidentPages).set({ linkUsedAt: null }).where(eq(incidentPages.id, p.pageId));
      throw err;
    }
  });

  /**
   * The link signs the paged responder in to the console for this incident: the link is claimed (it works once,
   * for this or for the acknowledge button) and a short session scoped to the incident starts. No acknowledgement.
   */
  app.post('/:token/console', async (c) => {
    const form = Object.fromEntries(new URLSearchParams(await c.req.text()));
    const pre = getCookie(c, PRE);
    if (!pre || !sameSecret(form._csrf, pre)) return problemPage(c, 'invalid');
    const p = await load(c.req.param('token'));
    if ('problem' in p) return problemPage(c, p.problem);
    if (p.status === 'closed') return problemPage(c, 'closed');
    const r = await startLinkSession(db, p, terms, clock());
    if (!r.signedIn) return problemPage(c, r.reason);
    deleteCookie(c, PRE, cookieOptions);
    setCookie(c, sessionCookieName(config), r.token, { ...cookieOptions, expires: r.expiresAt });
    return c.redirect(`/console/incidents/${p.incidentId}`, 303);
  });

  app.all('*', (c) => problemPage(c, 'not-found'));
  return app;
};
