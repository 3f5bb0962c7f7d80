import { eq } from 'drizzle-orm';
import { Hono, type Context } from 'hono';
import type { JSX } from 'hono/jsx/jsx-runtime';
import { z } from 'zod';
import { verifyConsentToken } from '../../activities/consents';
import { getNotice } from '../../activities/notices';
import { subjects } from '../../db/schema';
import { CONSENT_CONFLICT_PREFIX, sensitiveCategories, subjectLanguage, type ConsentActor } from '../../domain/consent';
import type { Services } from '../../runtime/services';
import { consentUpdates } from '../consent-updates';
import { ApiError, loggableError } from '../errors';
import { PROBLEM_STATUS, type PageLanguage, type PageProblem } from './consent-page-text';
import {
  ConflictPage,
  ConsentPage,
  dateFormat,
  PAGE_CSP,
  ProblemPage,
  RecordedPage,
  type ConsentFacts,
} from './consent-page-view';

/** What the form posts: the button pressed and, with sensitive data, the separate choice. */
const ConsentForm = z.discriminatedUnion('action', [
  z.object({ action: z.enum(['grant', 'deny']), sensitive: z.enum(['yes', 'no']).optional() }).strict(),
  z.object({ action: z.literal('withdraw') }).strict(),
]);

const FORM_TYPE = 'application/x-www-form-urlencoded';

/** HTML with the page's own CSP; never cached or sent on as a Referer, since the token is in the URL. */
const render = async (c: Context, status: 200 | 400 | 403 | 404 | 409 | 410 | 500, page: JSX.Element) =>
  c.html(`<!doctype html>${await page.toString()}`, status, {
    'content-security-policy': PAGE_CSP,
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
    'x-robots-tag': 'noindex, nofollow',
  });

const problemPage = (c: Context, problem: PageProblem, lang?: PageLanguage) =>
  render(c, PROBLEM_STATUS[problem], <ProblemPage problem={problem} lang={lang} />);

type Loaded =
  | { problem: PageProblem; lang?: PageLanguage }
  | { facts: ConsentFacts; subjectId: string; expired: boolean; consentId: string };

/**
 * The subject's page at `/consent/{token}`, outside /v1 and without an API key: the link token (HMAC, one
 * consent round, expiring with its response window) is the credential. Decisions go through the same
 * workflow updates as the API (method `web-link`, actor `subject:<id>`) and are audited by their activities.
 * Every outcome is a page: 403 for a malformed or altered token, 410 for an expired one or one of an older
 * round, 409 naming the state for a refused decision, 400 for a bad form — never JSON or a stack trace.
 */
export const consentPage = (services: Services) => {
  const { keyring, clock, catalog, logger } = services;
  const { db } = services.database;
  const updates = consentUpdates(services);

  /** The consent a token opens; `answered`: right after this link changed it, so its window no longer matters. */
  const load = async (token: string, answered = false): Promise<Loaded> => {
    const verdict = verifyConsentToken(keyring, token, clock());
    if (!verdict.valid && verdict.reason !== 'expired') return { problem: 'invalid' };
    const { claims } = verdict;
    const row = await updates.row(claims.consentId);
    if (!row) return { problem: 'not-found' };
    const [subject] = await db
      .select({ locale: subjects.locale, jurisdiction: subjects.jurisdiction })
      .from(subjects)
      .where(eq(subjects.id, row.subjectId));
    const lang = subjectLanguage(subject?.locale);
    if (row.round !== claims.round) return { problem: 'superseded', lang };
    const expired = !verdict.valid;
    // Withdrawal stays as easy as the grant: the link of a granted round withdraws it after its answer window.
    if (expired && row.status !== 'granted' && !answered) return { problem: 'expired', lang };
    const receipt = row.receipt as { receipt?: { receiptId?: string } } | null;
    const facts: ConsentFacts = {
      lang,
      format: dateFormat(lang, subject?.jurisdiction),
      notice: await getNotice(db, row.noticeId),
      status: row.status,
      respondBy: row.respondBy,
      decidedAt: row.decidedAt,
      validUntil: row.validUntil,
      sensitiveCategories: sensitiveCategories(catalog, row.purpose),
      sensitiveDecision: row.sensitiveDecision,
      ...(receipt?.receipt?.receiptId ? { receiptId: receipt.receipt.receiptId } : {}),
    };
    return { facts, subjectId: row.subjectId, expired, consentId: row.id };
  };

  /** The form's fields, once each, as the schema allows; undefined for anything else. */
  const readForm = async (c: Context) => {
    if (c.req.header('content-type')?.split(';')[0]?.trim().toLowerCase() !== FORM_TYPE) return undefined;
    const params = new URLSearchParams(await c.req.text());
    const keys = [...params.keys()];
    if (new Set(keys).size !== keys.length) return undefined;
    const parsed = ConsentForm.safeParse(Object.fromEntries(params));
    return parsed.success ? parsed.data : undefined;
  };

  const app = new Hono();
  app.onError((err, c) => {
    logger.error({ err: loggableError(err), route: '/consent/:token' }, 'consent page failed');
    return problemPage(c, 'internal');
  });

  app.get('/:token', async (c) => {
    const loaded = await load(c.req.param('token'));
    if ('problem' in loaded) return problemPage(c, loaded.problem, loaded.lang);
    return render(c, 200, <ConsentPage f={loaded.facts} />);
  });

  app.post('/:token', async (c) => {
    const token = c.req.param('token');
    const loaded = await load(token);
    if ('problem' in loaded) return problemPage(c, loaded.problem, loaded.lang);
    const { facts, subjectId, consentId, expired } = loaded;
    const form = await readForm(c);
    if (!form) return problemPage(c, 'bad-form', facts.lang);
    if (expired && form.action !== 'withdraw') return problemPage(c, 'expired', facts.lang);
    const by: ConsentActor = { actor: `subject:${subjectId}`, apiKeyId: null, method: 'web-link' };
    try {
      if (form.action === 'withdraw') {
        await updates.withdraw(consentId, by);
      } else {
        // A refusal refuses the sensitive processing too: the choice only counts with a grant.
        const sensitive = form.action === 'grant' && form.sensitive ? form.sensitive === 'yes' : undefined;
        await updates.decide(consentId, form.action, by, sensitive);
      }
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.status === 409) {
        const state = err.code.startsWith(CONSENT_CONFLICT_PREFIX)
          ? err.code.slice(CONSENT_CONFLICT_PREFIX.length)
          : err.code;
        return render(c, 409, <ConflictPage lang={facts.lang} state={state} />);
      }
      if (err.status === 400) return problemPage(c, 'bad-form', facts.lang);
      if (err.status === 404) return problemPage(c, 'not-found', facts.lang);
      throw err;
    }
    // Read back what was recorded (the receipt ID, the sensitive answer), as the GET would show it.
    const after = await load(token, true);
    if ('problem' in after) return problemPage(c, after.problem, after.lang);
    const recorded = form.action === 'withdraw' ? 'withdrawn' : form.action === 'grant' ? 'granted' : 'denied';
    return render(c, 200, <RecordedPage f={after.facts} recorded={recorded} />);
  });

  // Any other path or method under /consent: a page too, never the API's JSON.
  app.all('*', (c) => problemPage(c, 'not-found'));
  return app;
};
