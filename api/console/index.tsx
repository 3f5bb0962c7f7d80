import { randomBytes, randomUUID } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { JSX } from 'hono/jsx/jsx-runtime';
import { desc, inArray } from 'drizzle-orm';
import { z } from 'zod';
import { listAudit } from '../../activities/audit';
import { incidentDetail } from '../../activities/incident-records';
import { viewSchedule } from '../../activities/schedules';
import { findPrincipal } from '../../activities/users';
import { backups, restoreTests } from '../../db/schema';
import { DomainError } from '../../domain/errors';
import type { CnGrade } from '../../domain/regulatory-clocks';
import { SubjectNoticeRequest } from '../../domain/breach-notice';
import {
  GradeRequest,
  type IncidentActor,
  NoteRequest,
  PostmortemRequest,
  RegulatorNotificationRequest,
  ResolveRequest,
  StatusRequest,
} from '../../domain/incident';
import type { Services } from '../../runtime/services';
import { ApiError, fromDomain, loggableError } from '../errors';
import { incidentActions } from '../incident-updates';
import { startSubjectNotices } from '../incident-notices';
import { incidentActor } from '../routes/incidents';
import { verifyWithCheckpoints } from '../routes/audit';
import { startRestoreTest } from '../routes/backups';
import { scheduleActions } from '../routes/schedules';
import { can, type Capability } from './capabilities';
import type { View } from './layout';
import {
  AuditPage,
  BackupsPage,
  IncidentPage,
  ProblemPage,
  SchedulesPage,
  SignInPage,
  TodayPage,
  type AuditFilters,
  type BackupRow,
} from './pages';
import {
  endSession,
  findLinkSession,
  findSession,
  sameSecret,
  sessionCookieName,
  sessionTerms,
  startSession,
  type ConsoleSession,
  type LinkSession,
} from './sessions';
import { registerSubjectPages } from './subject-pages';
import { registerDestructionPages } from './destruction-pages';
import { registerRequestPages } from './request-pages';
import { registerObligationPages } from './obligation-pages';
import { CONSOLE_CSP, CONSOLE_CSS, CONSOLE_CSS_ETAG } from './style';
import { CONSOLE_TEXT, pickLanguage, type ConsoleText } from './text';
import { todayFacts } from './today';

export type Status = 200 | 400 | 401 | 403 | 404 | 409 | 429 | 500;
export type ProblemKey = keyof ConsoleText['problems'];
/** `session`: signed in with an API key; `link`: signed in by a page's link, for one incident only. */
export interface ConsoleEnv {
  Variables: { view: View; session: ConsoleSession | undefined; link: LinkSession | undefined };
}

/** What a page-link session may reach: its incident's page and forms, and sign-out. */
const linkMayUse = (path: string, incidentId: string) =>
  path === '/console/sign-out' ||
  path === `/console/incidents/${incidentId}` ||
  new RegExp(`^/console/incidents/${incidentId}/[a-z-]+$`).test(path);

const FORM_TYPE = 'application/x-www-form-urlencoded';
const Uuid = z.uuid().transform((id) => id.toLowerCase());
const AuditQuery = z
  .object({
    actor: z.string().trim().max(200).optional(),
    action: z.string().trim().max(100).optional(),
    targetType: z.string().trim().max(100).optional(),
    targetId: z.string().trim().max(200).optional(),
    before: z.coerce.number().int().min(1).optional(),
    lang: z.string().optional(),
  })
  .strict();
const AUDIT_PAGE = 100;

/** Where a sign-in may send the user back to: a console path of this origin only. */
const safeNext = (next: unknown): string =>
  typeof next === 'string' && /^\/console(\/[A-Za-z0-9/_-]*)?(\?[A-Za-z0-9=&%._-]*)?$/.test(next) ? next : '/console';

/**
 * The console at /console: server-rendered pages (no script) over the same activity code as the API. A user signs
 * in once with an API key and gets a server-side session (cookie HttpOnly, SameSite=Strict, `__Host-` and Secure
 * when the public URL is https); the session ends with sign-out, idleness, its lifetime or its key's revocation.
 * Every POST carries the session's CSRF token (the sign-in form a pre-session one); without it: 403, nothing done.
 */
export const consoleApp = (services: Services) => {
  const { config, clock, logger } = services;
  const { db } = services.database;
  const tls = config.CUSTODIAN_PUBLIC_URL.startsWith('https:');
  const SESSION = sessionCookieName(config);
  const PRE = tls ? '__Host-custodian-sign-in' : 'custodian-sign-in';
  const LANG = 'custodian-console-lang';
  const cookieOptions = { path: '/', httpOnly: true, secure: tls, sameSite: 'Strict' } as const;
  const terms = sessionTerms(config);

  const render = async (c: Context<ConsoleEnv>, status: Status, page: JSX.Element) =>
    c.html(`<!doctype html>${await page.toString()}`, status, {
      'content-security-policy': CONSOLE_CSP,
      'cache-control': 'no-store',
      'x-robots-tag': 'noindex, nofollow',
    });
  const problemPage = (c: Context<ConsoleEnv>, status: Status, problem: ProblemKey, extra = '') => {
    const v = c.get('view');
    return render(c, status, <ProblemPage v={v} text={`${v.t.problems[problem]} ${extra}`.trim()} />);
  };

  /** The form's string fields, or undefined when the body is not a form. */
  const readForm = async (c: Context<ConsoleEnv>): Promise<Record<string, string> | undefined> => {
    if (c.req.header('content-type')?.split(';')[0]?.trim().toLowerCase() !== FORM_TYPE) return undefined;
    return Object.fromEntries(new URLSearchParams(await c.req.text()));
  };

  const app = new Hono<ConsoleEnv>();
  app.onError((err, c) => {
    logger.error({ err: loggableError(err), route: c.req.routePath }, 'console page failed');
    if (!c.get('view')) return c.text('console error', 500);
    return problemPage(c, 500, 'internal');
  });

  app.get('/console.css', (c) => {
    if (c.req.header('if-none-match') === CONSOLE_CSS_ETAG) return c.body(null, 304);
    return c.body(CONSOLE_CSS, 200, {
      'content-type': 'text/css; charset=utf-8',
      'cache-control': 'public, max-age=3600',
      etag: CONSOLE_CSS_ETAG,
    });
  });

  // Language and session for every page; `?lang=` is remembered in a cookie.
  app.use('*', async (c, next) => {
    const query = c.req.query('lang');
    const lang = pickLanguage(query, getCookie(c, LANG), c.req.header('accept-language'));
    if (query === lang) setCookie(c, LANG, lang, { ...cookieOptions, maxAge: 365 * 86_400 });
    const token = getCookie(c, SESSION);
    const session = await findSession(db, token, terms, clock());
    const link = session ? undefined : await findLinkSession(db, token, terms, clock());
    c.set('session', session);
    c.set('link', link);
    c.set('view', {
      lang,
      t: CONSOLE_TEXT[lang],
      path: c.req.path,
      ...(session && { user: { userId: session.principal.userId, role: session.principal.role, csrf: session.csrf } }),
      ...(link && { user: { userId: link.userId, role: link.role, csrf: link.csrf, incidentId: link.incidentId } }),
    });
    await next();
  });

  app.get('/sign-in', async (c) => {
    const next = safeNext(c.req.query('next'));
    if (c.get('session')) return c.redirect(next, 303);
    const pre = randomBytes(32).toString('base64url');
    setCookie(c, PRE, pre, { ...cookieOptions, maxAge: 3600 });
    const flash = c.req.query('signed-out') !== undefined ? c.get('view').t.signedOut : undefined;
    return render(c, 200, <SignInPage v={c.get('view')} next={next} pre={pre} {...(flash && { flash })} />);
  });

  app.post('/sign-in', async (c) => {
    const form = await readForm(c);
    const pre = getCookie(c, PRE);
    // Login CSRF: the form's token must match the cookie this browser got with the form (double submit).
    if (!form || !pre || !sameSecret(form._csrf, pre)) return problemPage(c, 403, 'csrf');
    const next = safeNext(form.next);
    const principal = form.key ? await findPrincipal(db, form.key.trim()) : undefined;
    if (!principal) {
      logger.info({ route: '/console/sign-in' }, 'console sign-in refused');
      const v = c.get('view');
      return render(c, 401, <SignInPage v={v} next={next} pre={pre} problem={v.t.signInFailed} />);
    }
    const { token, expiresAt } = await startSession(db, principal, terms, clock());
    deleteCookie(c, PRE, cookieOptions);
    setCookie(c, SESSION, token, { ...cookieOptions, expires: expiresAt });
    return c.redirect(next, 303);
  });

  // Everything else needs a live session (a page-link session: its incident only); a POST also its CSRF token.
  app.use('*', async (c, next) => {
    const link = c.get('link');
    const session = c.get('session') ?? (link && linkMayUse(c.req.path, link.incidentId) ? link : undefined);
    if (c.req.method === 'GET' || c.req.method === 'HEAD') {
      if (!session) {
        const url = new URL(c.req.url);
        return c.redirect(`/console/sign-in?next=${encodeURIComponent(url.pathname + url.search)}`, 303);
      }
      return next();
    }
    if (c.req.method !== 'POST') return problemPage(c, 404, 'not-found');
    const form = await readForm(c);
    if (!session || !form || !sameSecret(form._csrf, session.csrf)) return problemPage(c, 403, 'csrf');
    return next();
  });

  /** Who is signed in: the key session's principal, or the page-link session's user (no key). */
  const who = (c: Context<ConsoleEnv>) => {
    const session = c.get('session');
    if (session) return session.principal;
    const link = c.get('link')!;
    return { userId: link.userId, role: link.role, keyId: null };
  };
  /** 403 unless the session's role has the capability (the same roles as the API route it stands for). */
  const allowed = (c: Context<ConsoleEnv>, capability: Capability) => can(who(c).role, capability);
  const formOf = async (c: Context<ConsoleEnv>) => Object.fromEntries(new URLSearchParams(await c.req.text()));

  app.post('/sign-out', async (c) => {
    await endSession(db, { idHash: (c.get('session') ?? c.get('link'))!.idHash, principal: who(c) });
    deleteCookie(c, SESSION, cookieOptions);
    return c.redirect('/console/sign-in?signed-out', 303);
  });

  app.get('/', async (c) => {
    const facts = await todayFacts(db, c.get('session')!.principal.role, clock());
    return render(c, 200, <TodayPage v={c.get('view')} f={facts} />);
  });

  /** A refusal as a page: the API's status and code; anything else is the onError 500. */
  const refused = (c: Context<ConsoleEnv>, err: unknown) => {
    const e = err instanceof DomainError ? fromDomain(err) : err;
    if (!(e instanceof ApiError)) throw err;
    if (e.status === 404) return problemPage(c, 404, 'not-found');
    if (e.status === 403) return problemPage(c, 403, 'forbidden');
    if (e.status === 400) return problemPage(c, 400, 'bad-form', e.message);
    return problemPage(c, 409, 'conflict', e.code);
  };

  /** Each incident form: its capability (the API route's roles) and how it reads its fields into the API's body. */
  const optional = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v);
  const INCIDENT_FORMS = {
    ack: { capability: 'ackIncident', parse: () => ({ success: true as const, data: {} }) },
    notes: {
      capability: 'noteIncident',
      parse: (f: Record<string, string>) => NoteRequest.safeParse({ text: f.text }),
    },
    status: {
      capability: 'statusIncident',
      parse: (f: Record<string, string>) =>
        StatusRequest.safeParse({ status: f.status, ...(optional(f.note) && { note: f.note }) }),
    },
    'regulator-notifications': {
      capability: 'regulatorIncident',
      parse: (f: Record<string, string>) =>
        RegulatorNotificationRequest.safeParse({
          deadline: f.deadline,
          authority: f.authority,
          reference: f.reference,
          ...(optional(f.reasonsForDelay) && { reasonsForDelay: f.reasonsForDelay }),
        }),
    },
    resolve: {
      capability: 'resolveIncident',
      parse: (f: Record<string, string>) => ResolveRequest.safeParse({ summary: f.summary }),
    },
    grade: {
      capability: 'gradeIncident',
      parse: (f: Record<string, string>) => GradeRequest.safeParse({ grade: f.grade }),
    },
    postmortem: {
      capability: 'postmortemIncident',
      parse: (f: Record<string, string>) =>
        PostmortemRequest.safeParse({
          impact: f.impact,
          timeline: f.timeline,
          rootCause: f.rootCause,
          actions: f.actions,
        }),
    },
  } as const satisfies Record<string, { capability: Capability; parse: (f: Record<string, string>) => unknown }>;
  const incidents = incidentActions(services);

  /** The breach-notice form's fields (named by their path in the API's body) as the API's request body. */
  const breachNoticeForm = (f: Record<string, string>) => {
    const texts = (locale: 'zh-CN' | 'en') => ({
      whatHappened: f[`texts.${locale}.whatHappened`],
      likelyConsequences: f[`texts.${locale}.likelyConsequences`],
      measuresTaken: f[`texts.${locale}.measuresTaken`],
      ...(optional(f[`texts.${locale}.whatYouCanDo`]) && { whatYouCanDo: f[`texts.${locale}.whatYouCanDo`] }),
    });
    return {
      texts: { 'zh-CN': texts('zh-CN'), en: texts('en') },
      contact: { name: f['contact.name'], contact: f['contact.contact'] },
    };
  };

  app.get('/incidents/:id', async (c) => {
    if (!allowed(c, 'viewIncidents')) return problemPage(c, 403, 'forbidden');
    const id = Uuid.safeParse(c.req.param('id'));
    if (!id.success) return problemPage(c, 404, 'not-found');
    const d = await incidentDetail(db, id.data, clock());
    if (!d) return problemPage(c, 404, 'not-found');
    const v = c.get('view');
    const done = c.req.query('done');
    const flash =
      done === 'acked'
        ? v.t.incident.acked
        : done === 'already'
          ? v.t.incident.alreadyAcked(d.acknowledgedBy ?? '')
          : done === 'done'
            ? v.t.incident.done
            : done === 'notices'
              ? v.t.incident.noticesStarted
              : undefined;
    // One key per rendering of the breach-notice form: a form sent twice starts one campaign.
    return render(c, 200, <IncidentPage v={v} d={d} formKey={randomUUID()} {...(flash && { flash })} />);
  });

  /** An incident form: the same actions as the API's routes (texts stored first, refusals as the API's problems). */
  app.post('/incidents/:id/:action{ack|notes|status|grade|regulator-notifications|resolve|postmortem}', async (c) => {
    const action = c.req.param('action') as keyof typeof INCIDENT_FORMS;
    const form = INCIDENT_FORMS[action];
    if (!allowed(c, form.capability)) return problemPage(c, 403, 'forbidden');
    const id = Uuid.safeParse(c.req.param('id'));
    if (!id.success) return problemPage(c, 404, 'not-found');
    const parsed = form.parse(await formOf(c));
    if (!parsed.success) {
      const field = 'error' in parsed ? parsed.error.issues[0]?.path.join('.') : undefined;
      return problemPage(c, 400, 'bad-form', field);
    }
    const session = c.get('session');
    const by: IncidentActor = session
      ? incidentActor(session.principal, 'console')
      : { actor: `user:${who(c).userId}`, userId: who(c).userId, apiKeyId: null, role: who(c).role, method: 'console' };
    const body = parsed.data as never;
    let done = 'done';
    try {
      if (action === 'ack') done = (await incidents.ack(id.data, by)).acknowledged ? 'acked' : 'already';
      else if (action === 'notes') await incidents.note(id.data, by, (body as { text: string }).text);
      else if (action === 'status') await incidents.status(id.data, by, body);
      else if (action === 'grade') await incidents.grade(id.data, by, (body as { grade: CnGrade }).grade);
      else if (action === 'regulator-notifications') await incidents.regulator(id.data, by, body);
      else if (action === 'resolve') await incidents.resolve(id.data, by, (body as { summary: string }).summary);
      else await incidents.postmortem(id.data, by, body);
    } catch (err) {
      return refused(c, err);
    }
    return c.redirect(`/console/incidents/${id.data}?done=${done}`, 303);
  });

  /**
   * Breach notices to the incident's affected subjects, through the API's own function. A page-link session may not
   * send them (no key behind it; a notice to every affected subject is not a 3 a.m. action): sign in with a key.
   */
  app.post('/incidents/:id/subject-notices', async (c) => {
    const session = c.get('session');
    if (!session || !allowed(c, 'noticeSubjects')) return problemPage(c, 403, 'forbidden');
    const id = Uuid.safeParse(c.req.param('id'));
    if (!id.success) return problemPage(c, 404, 'not-found');
    const form = await formOf(c);
    const parsed = SubjectNoticeRequest.safeParse(breachNoticeForm(form));
    if (!parsed.success) return problemPage(c, 400, 'bad-form', parsed.error.issues[0]?.path.join('.'));
    const key = z.uuid().safeParse(form.idempotencyKey);
    try {
      await startSubjectNotices(services, session.principal, id.data, parsed.data, key.success ? key.data : undefined);
    } catch (err) {
      return refused(c, err);
    }
    return c.redirect(`/console/incidents/${id.data}?done=notices`, 303);
  });

  const auditPage = async (c: Context<ConsoleEnv>, verify: boolean) => {
    if (!allowed(c, verify ? 'verifyAudit' : 'viewAudit')) return problemPage(c, 403, 'forbidden');
    const parsed = AuditQuery.safeParse(c.req.query());
    if (!parsed.success) return problemPage(c, 400, 'bad-form', parsed.error.issues[0]?.path.join('.'));
    const { before, lang: _lang, ...rest } = parsed.data;
    const filters: AuditFilters = Object.fromEntries(Object.entries(rest).filter(([, v]) => v)) as AuditFilters;
    const entries = await listAudit(db, {
      ...filters,
      ...(before !== undefined && { before }),
      newestFirst: true,
      limit: AUDIT_PAGE,
    });
    const older =
      entries.length === AUDIT_PAGE
        ? `/console/audit?${new URLSearchParams({ ...filters, before: String(entries.at(-1)!.seq) } as Record<string, string>)}`
        : null;
    const verification = verify ? await verifyWithCheckpoints(services) : undefined;
    return render(
      c,
      200,
      <AuditPage v={c.get('view')} filters={filters} entries={entries} older={older} verification={verification} />,
    );
  };
  app.get('/audit', (c) => auditPage(c, false));
  app.get('/audit/verify', (c) => auditPage(c, true));

  app.get('/backups', async (c) => {
    if (!allowed(c, 'viewBackups')) return problemPage(c, 403, 'forbidden');
    const list = await db.select().from(backups).orderBy(desc(backups.startedAt), desc(backups.id)).limit(50);
    const ids = list.map((b) => b.id);
    const tests = ids.length
      ? await db
          .select()
          .from(restoreTests)
          .where(inArray(restoreTests.backupId, ids))
          .orderBy(desc(restoreTests.startedAt))
      : [];
    const latest = new Map<string, (typeof tests)[number]>();
    for (const test of tests) if (!latest.has(test.backupId)) latest.set(test.backupId, test);
    const rows: BackupRow[] = list.map((b) => {
      const test = latest.get(b.id);
      return {
        id: b.id,
        kind: b.kind,
        status: b.status,
        startedAt: b.startedAt,
        sizeBytes: b.sizeBytes,
        durationMs: b.durationMs,
        test: test
          ? {
              status: test.status,
              finishedAt: test.finishedAt,
              rtoMs: test.rtoMs,
              rpoMs: test.rpoMs,
              reasons: test.reasons,
              tables: test.tables,
            }
          : null,
      };
    });
    const v = c.get('view');
    const flash = c.req.query('done') === 'test' ? v.t.backups.testStarted : undefined;
    // One key per rendering: a form sent twice (a double click, a resend) starts one restore test.
    return render(c, 200, <BackupsPage v={v} rows={rows} formKey={randomUUID()} {...(flash && { flash })} />);
  });

  app.post('/backups/:id/restore-tests', async (c) => {
    if (!allowed(c, 'restoreTest')) return problemPage(c, 403, 'forbidden');
    const id = Uuid.safeParse(c.req.param('id'));
    if (!id.success) return problemPage(c, 404, 'not-found');
    const key = z.uuid().safeParse((await formOf(c)).idempotencyKey);
    try {
      await startRestoreTest(services, c.get('session')!.principal, id.data, key.success ? key.data : undefined);
    } catch (err) {
      return refused(c, err);
    }
    return c.redirect('/console/backups?done=test', 303);
  });

  const schedules = scheduleActions(services);
  app.get('/schedules', async (c) => {
    if (!allowed(c, 'viewSchedules')) return problemPage(c, 403, 'forbidden');
    const views = await Promise.all(services.schedules.map((s) => viewSchedule(services.temporal, s)));
    const v = c.get('view');
    const done = c.req.query('done');
    const flash = done === 'triggered' ? v.t.schedules.triggered : done === 'saved' ? v.t.schedules.saved : undefined;
    return render(c, 200, <SchedulesPage v={v} views={views} {...(flash && { flash })} />);
  });

  app.post('/schedules/:name/:action{pause|resume|trigger}', async (c) => {
    const action = c.req.param('action');
    if (!allowed(c, action === 'trigger' ? 'triggerSchedule' : 'changeSchedule'))
      return problemPage(c, 403, 'forbidden');
    const principal = c.get('session')!.principal;
    const name = c.req.param('name');
    try {
      if (action === 'trigger') await schedules.trigger(principal, name);
      else await schedules.edit(principal, name, { paused: action === 'pause' });
    } catch (err) {
      return refused(c, err);
    }
    return c.redirect(`/console/schedules?done=${action === 'trigger' ? 'triggered' : 'saved'}`, 303);
  });

  registerSubjectPages(app, services, { render, problemPage, allowed, refused, formOf });
  registerDestructionPages(app, services, { render, problemPage, allowed, refused, formOf });
  registerRequestPages(app, services, { render, problemPage, allowed, refused, formOf });
  registerObligationPages(app, services, { render, problemPage, allowed, refused, formOf });

  app.all('*', (c) => problemPage(c, 404, 'not-found'));
  return app;
};
