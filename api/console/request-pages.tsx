import { asc, desc, inArray, notInArray } from 'drizzle-orm';
import type { Context, Hono } from 'hono';
import type { FC } from 'hono/jsx';
import { z } from 'zod';
import { requestSummary } from '../../activities/request-records';
import type { Db } from '../../db/client';
import { requests } from '../../db/schema';
import {
  CLOSED_STATUSES,
  COMPLAINT_OUTCOMES,
  EXPORT_DELIVERIES,
  ExtendBody,
  FulfilBody,
  NoteBody,
  OBJECTION_OUTCOMES,
  RefuseBody,
  VERIFICATION_METHODS,
  VerifyBody,
  type RequestActor,
} from '../../domain/request';
import type { Services } from '../../runtime/services';
import { actorOf, type Principal } from '../auth';
import { ApiError } from '../errors';
import { requestActions } from '../request-updates';
import { can } from './capabilities';
import { formatDate, formatDuration } from './format';
import type { ConsoleEnv } from './index';
import { Flash, Layout, type View } from './layout';
import { REQUEST_TEXT } from './request-text';
import type { ConsoleKit } from './subject-pages';
import { PostForm } from './forms';
import { DataTable } from './table';

type Summary = ReturnType<typeof requestSummary>;
type Detail = Awaited<ReturnType<ReturnType<typeof requestActions>['view']>>;

const Uuid = z.uuid().transform((id) => id.toLowerCase());
const optional = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v);

/** Open requests, the nearest deadline (so the late ones) first: Today's list and the list page's head. */
export const dueRequests = async (db: Db, now: Date, limit = 50): Promise<Summary[]> =>
  (
    await db
      .select()
      .from(requests)
      .where(notInArray(requests.status, [...CLOSED_STATUSES]))
      .orderBy(asc(requests.dueAt), asc(requests.id))
      .limit(limit)
  ).map((r) => requestSummary(r, now));

const TimeLeft: FC<{ v: View; r: Pick<Summary, 'timeLeftMs' | 'late' | 'closedAt'> }> = ({ v, r }) => {
  const t = REQUEST_TEXT[v.lang];
  if (r.timeLeftMs === null) return <span class={r.late ? 'late' : undefined}>{r.late ? t.lateClosed : '—'}</span>;
  return r.timeLeftMs < 0 ? (
    <span class="late">{t.late(formatDuration(-r.timeLeftMs))}</span>
  ) : (
    <span class={r.late ? 'late' : undefined}>{formatDuration(r.timeLeftMs)}</span>
  );
};

const ListTable: FC<{ v: View; rows: Summary[]; id?: string }> = ({ v, rows, id }) => {
  const t = REQUEST_TEXT[v.lang];
  const date = formatDate(v.lang);
  return (
    <DataTable
      id={id}
      rows={rows}
      empty={t.none}
      rowClass="request-row"
      columns={[
        { head: t.type, cell: (r) => <a href={`/console/requests/${r.id}`}>{r.type}</a> },
        { head: t.status, cell: (r) => r.status },
        { head: t.received, cell: (r) => date(r.receivedAt) },
        { head: t.dueAt, cell: (r) => date(r.dueAt) },
        { head: t.timeLeft, cell: (r) => <TimeLeft v={v} r={r} /> },
      ]}
    />
  );
};

/** Today's section: requests due or late, for the roles that may list them. */
export const TodayRequests: FC<{ v: View; rows?: Summary[] | undefined }> = ({ v, rows }) => {
  if (!rows) return null;
  const t = REQUEST_TEXT[v.lang];
  return (
    <section aria-labelledby="requests-due">
      <h2 id="requests-due">{t.due}</h2>
      {rows.length === 0 ? <p>{t.noneDue}</p> : <ListTable v={v} rows={rows} />}
      <p>
        <a href="/console/requests">{t.title}</a>
      </p>
    </section>
  );
};

const ListPage: FC<{ v: View; open: Summary[]; closed: Summary[] }> = ({ v, open, closed }) => {
  const t = REQUEST_TEXT[v.lang];
  return (
    <Layout v={v} title={t.title}>
      <section aria-labelledby="open">
        <h2 id="open">{t.open}</h2>
        <ListTable v={v} rows={open} id="open-list" />
      </section>
      <section aria-labelledby="closed">
        <h2 id="closed">{t.closed}</h2>
        <ListTable v={v} rows={closed} />
      </section>
    </Layout>
  );
};

/** The fulfil form's fields for the request's type (the API's body; the workflow checks the rest). */
const FulfilFields: FC<{ v: View; type: string }> = ({ v, type }) => {
  const t = REQUEST_TEXT[v.lang];
  const outcomes = type === 'objection' ? OBJECTION_OUTCOMES : type === 'complaint' ? COMPLAINT_OUTCOMES : null;
  return (
    <>
      {t.fulfilNote[type] ? <p>{t.fulfilNote[type]}</p> : null}
      {type === 'access' || type === 'portability' ? (
        <>
          <label for="delivery">{t.delivery}</label>
          <select id="delivery" name="delivery">
            {EXPORT_DELIVERIES.map((d) => (
              <option value={d}>{t.deliveries[d]}</option>
            ))}
          </select>
        </>
      ) : null}
      {outcomes ? (
        <>
          <label for="outcome">{t.fulfilOutcome}</label>
          <select id="outcome" name="outcome">
            {outcomes.map((o) => (
              <option value={o}>{o}</option>
            ))}
          </select>
        </>
      ) : null}
      {type === 'correction' || type === 'objection' ? (
        <>
          <label for="values">{t.values}</label>
          <textarea id="values" name="values" maxlength={20000} required={type === 'correction'} />
        </>
      ) : null}
      {type === 'objection' ? (
        <>
          <label for="statement">{t.statement}</label>
          <textarea id="statement" name="statement" maxlength={5000} />
        </>
      ) : null}
      {type === 'complaint' ? (
        <>
          <label for="reply">{t.reply}</label>
          <textarea id="reply" name="reply" required maxlength={20000} />
        </>
      ) : null}
    </>
  );
};

const DetailPage: FC<{ v: View; d: Detail; flash?: string | undefined; password?: string | undefined }> = ({
  v,
  d,
  flash,
  password,
}) => {
  const t = REQUEST_TEXT[v.lang];
  const date = formatDate(v.lang);
  const role = v.user!.role;
  const closed = (CLOSED_STATUSES as readonly string[]).includes(d.status);
  const verification = d.verification as { method: string; by: string; at: number | string } | null;
  const mayExtend = d.clock.maxExtensionMs > 0 && d.clock.extensionMs === 0;
  return (
    <Layout v={v} title={`${t.one}: ${d.type}`}>
      <Flash text={flash} />
      {password ? (
        <section aria-labelledby="password">
          <h2 id="password">{t.password}</h2>
          <p class="mono" id="export-password">
            {password}
          </p>
        </section>
      ) : null}
      <section aria-labelledby="facts">
        <h2 id="facts" class="mono">
          {d.id}
        </h2>
        <dl>
          <dt>{t.status}</dt>
          <dd id="request-status">{d.status}</dd>
          <dt>{t.subject}</dt>
          <dd class="mono">{d.subjectId}</dd>
          <dt>{t.received}</dt>
          <dd>
            {date(d.receivedAt)} ({t.channel}: {d.channel}, {t.jurisdiction}: {d.jurisdiction})
          </dd>
          <dt>{t.dueAt}</dt>
          <dd id="request-due">{date(d.dueAt)}</dd>
          <dt>{t.timeLeft}</dt>
          <dd id="request-time-left">
            <TimeLeft v={v} r={d} />
            {d.clock.paused ? ` · ${t.paused}` : ''}
          </dd>
          <dt>{t.rule}</dt>
          <dd>
            {d.clock.source} ({d.clock.kind})
          </dd>
          <dt>{t.extension}</dt>
          <dd id="request-extension">{d.clock.extensionMs ? formatDuration(d.clock.extensionMs) : t.notExtended}</dd>
          <dt>{t.verification}</dt>
          <dd id="request-verification">
            {verification ? t.verifiedBy(verification.method, verification.by) : t.notVerified}
          </dd>
          {d.assignee ? (
            <>
              <dt>{t.assignee}</dt>
              <dd class="mono">{d.assignee}</dd>
            </>
          ) : null}
          {d.fields.length ? (
            <>
              <dt>{t.fields}</dt>
              <dd>{d.fields.join(', ')}</dd>
            </>
          ) : null}
          {d.purposes.length ? (
            <>
              <dt>{t.purposes}</dt>
              <dd>{d.purposes.join(', ')}</dd>
            </>
          ) : null}
          {d.outcome ? (
            <>
              <dt>{t.outcome}</dt>
              <dd>{d.outcome}</dd>
            </>
          ) : null}
          {d.destruction ? (
            <>
              <dt>{t.destruction}</dt>
              <dd>
                <a class="mono" href={`/console/destructions/${d.destruction.id}`}>
                  {d.destruction.id}
                </a>
              </dd>
            </>
          ) : null}
          {d.exports.length ? (
            <>
              <dt>{t.exports}</dt>
              <dd>
                {d.exports.map((e) => (
                  <span class="mono">
                    {e.delivery} · {e.sha256}{' '}
                  </span>
                ))}
              </dd>
            </>
          ) : null}
        </dl>
      </section>
      {closed ? (
        <p>{t.closedNote}</p>
      ) : (
        <section aria-labelledby="act">
          <h2 id="act">{t.act}</h2>
          {can(role, 'verifyRequest') && d.status === 'verifying' ? (
            <PostForm v={v} action={`/console/requests/${d.id}/verify`} submit={t.verify}>
              <h3>{t.recordVerification}</h3>
              <label for="method">{t.method}</label>
              <select id="method" name="method">
                {VERIFICATION_METHODS.map((m) => (
                  <option value={m}>{m}</option>
                ))}
              </select>
              <label for="reference">{t.reference}</label>
              <input id="reference" name="reference" required maxlength={500} />
            </PostForm>
          ) : null}
          {can(role, 'noteRequest') ? (
            <PostForm v={v} action={`/console/requests/${d.id}/notes`} submit={t.addNote}>
              <label for="note">{t.note}</label>
              <textarea id="note" name="text" required maxlength={20000} />
            </PostForm>
          ) : null}
          {can(role, 'extendRequest') && mayExtend ? (
            <PostForm v={v} action={`/console/requests/${d.id}/extend`} submit={t.extend}>
              <label for="extend-by">{t.extendBy}</label>
              <input id="extend-by" name="by" required maxlength={40} />
              <label for="extend-reason">{t.extendReason}</label>
              <textarea id="extend-reason" name="reason" required minlength={3} maxlength={5000} />
            </PostForm>
          ) : null}
          {can(role, 'fulfilRequest') && d.status === 'open' ? (
            <PostForm v={v} action={`/console/requests/${d.id}/fulfil`} submit={t.fulfil} primary>
              <h3>{t.fulfil}</h3>
              <FulfilFields v={v} type={d.type} />
            </PostForm>
          ) : null}
          {can(role, 'refuseRequest') && (d.status === 'open' || d.status === 'paused') ? (
            <PostForm v={v} action={`/console/requests/${d.id}/refuse`} submit={t.refuse}>
              <label for="refuse-reason">{t.refuseReason}</label>
              <textarea id="refuse-reason" name="reason" required minlength={3} maxlength={20000} />
            </PostForm>
          ) : null}
        </section>
      )}
      <section aria-labelledby="timeline">
        <h2 id="timeline">{t.timeline}</h2>
        <ol id="timeline-list">
          {d.timeline.map((e) => (
            <li>
              {date(e.at)} · <strong>{e.type}</strong> · <span class="mono">{e.actor}</span>
              {'text' in e && e.text ? ` · ${e.text}` : ''}
            </li>
          ))}
        </ol>
      </section>
    </Layout>
  );
};

/** `field: value` lines as the API's `values` (strings; the catalog's checks run in the workflow). */
const valuesOf = (text: string | undefined): Record<string, string> | undefined => {
  if (!optional(text)) return undefined;
  const values: Record<string, string> = {};
  for (const line of text!.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (line.trim() === '') continue;
    if (at < 1) return { '': line };
    values[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return values;
};

/** Each request form: its capability (the API route's roles) and how it reads its fields into the API's body. */
const FORMS = {
  verify: {
    capability: 'verifyRequest',
    parse: (f: Record<string, string>) => VerifyBody.safeParse({ method: f.method, reference: f.reference }),
  },
  notes: { capability: 'noteRequest', parse: (f: Record<string, string>) => NoteBody.safeParse({ text: f.text }) },
  extend: {
    capability: 'extendRequest',
    parse: (f: Record<string, string>) =>
      ExtendBody.safeParse({ by: f.by, ...(optional(f.reason) && { reason: f.reason }) }),
  },
  fulfil: {
    capability: 'fulfilRequest',
    parse: (f: Record<string, string>) =>
      FulfilBody.safeParse({
        ...(optional(f.delivery) && { delivery: f.delivery }),
        ...(optional(f.outcome) && { outcome: f.outcome }),
        ...(valuesOf(f.values) && { values: valuesOf(f.values) }),
        ...(optional(f.statement) && { statement: f.statement }),
        ...(optional(f.reply) && { reply: f.reply }),
      }),
  },
  refuse: {
    capability: 'refuseRequest',
    // The API answers a missing reason 422 (PIPL Art. 50); the form names the field at once.
    parse: (f: Record<string, string>) =>
      RefuseBody.required().safeParse({ ...(optional(f.reason) && { reason: f.reason }) }),
  },
} as const;

const DONE = {
  verify: 'verified',
  notes: 'noted',
  extend: 'extended',
  fulfil: 'fulfilled',
  refuse: 'refused',
} as const;

export const consoleRequestActor = (p: Principal): RequestActor => ({ ...actorOf(p), role: p.role, method: 'console' });

/**
 * The Request pages: the list (open ones, the nearest deadline first) and one request with its clock, verification,
 * notes and the forms to verify, note, extend, fulfil and refuse — each through the API route's own function
 * (`requestActions`, api/request-updates.ts), the read audited as the API's is.
 */
export const registerRequestPages = (app: Hono<ConsoleEnv>, services: Services, kit: ConsoleKit) => {
  const { db } = services.database;
  const { clock } = services;
  const actions = requestActions(services);
  const principal = (c: Context<ConsoleEnv>) => c.get('session')!.principal;

  app.get('/requests', async (c) => {
    if (!kit.allowed(c, 'listRequests')) return kit.problemPage(c, 403, 'forbidden');
    const now = clock();
    const [open, closed] = await Promise.all([
      dueRequests(db, now, 200),
      db
        .select()
        .from(requests)
        .where(inArray(requests.status, [...CLOSED_STATUSES]))
        .orderBy(desc(requests.closedAt), desc(requests.id))
        .limit(50)
        .then((rows) => rows.map((r) => requestSummary(r, now))),
    ]);
    return kit.render(c, 200, <ListPage v={c.get('view')} open={open} closed={closed} />);
  });

  const detailPage = async (c: Context<ConsoleEnv>, id: string, flash?: string, password?: string) => {
    const d = await actions.view(principal(c), id);
    return kit.render(c, 200, <DetailPage v={c.get('view')} d={d} flash={flash} password={password} />);
  };

  app.get('/requests/:id', async (c) => {
    if (!kit.allowed(c, 'viewRequest')) return kit.problemPage(c, 403, 'forbidden');
    const id = Uuid.safeParse(c.req.param('id'));
    if (!id.success) return kit.problemPage(c, 404, 'not-found');
    const texts = REQUEST_TEXT[c.get('view').lang].done;
    const done = c.req.query('done');
    try {
      return await detailPage(
        c,
        id.data,
        done && Object.hasOwn(texts, done) ? texts[done as keyof typeof texts] : undefined,
      );
    } catch (err) {
      return kit.refused(c, err);
    }
  });

  app.post('/requests/:id/:action{verify|notes|extend|fulfil|refuse}', async (c) => {
    const action = c.req.param('action') as keyof typeof FORMS;
    const form = FORMS[action];
    if (!kit.allowed(c, form.capability)) return kit.problemPage(c, 403, 'forbidden');
    const id = Uuid.safeParse(c.req.param('id'));
    if (!id.success) return kit.problemPage(c, 404, 'not-found');
    const parsed = form.parse(await kit.formOf(c));
    if (!parsed.success) return kit.problemPage(c, 400, 'bad-form', parsed.error.issues[0]?.path.join('.'));
    const by = consoleRequestActor(principal(c));
    const body = parsed.data as never;
    try {
      if (action === 'fulfil') {
        const r = await actions.fulfil(id.data, by, body);
        // The one-time password is shown on this response only: never in a URL, never stored.
        if (r.password)
          return await detailPage(c, id.data, REQUEST_TEXT[c.get('view').lang].done.fulfilled, r.password);
      } else if (action === 'verify') await actions.verify(id.data, by, body);
      else if (action === 'notes') await actions.note(id.data, by, body);
      else if (action === 'extend') await actions.extend(id.data, by, body);
      else await actions.refuse(id.data, by, body);
    } catch (err) {
      // The API's 422 (a value the request's type needs) is the form's 400 naming the field.
      if (err instanceof ApiError && err.status === 422)
        return kit.problemPage(c, 400, 'bad-form', err.fields?.map((f) => f.path).join(', ') || err.code);
      return kit.refused(c, err);
    }
    return c.redirect(`/console/requests/${id.data}?done=${DONE[action]}`, 303);
  });
};
