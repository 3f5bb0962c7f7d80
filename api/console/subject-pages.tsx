import { desc, eq } from 'drizzle-orm';
import type { Context, Hono } from 'hono';
import type { FC } from 'hono/jsx';
import type { JSX } from 'hono/jsx/jsx-runtime';
import { z } from 'zod';
import type { SubjectView } from '../../activities/subjects';
import { legalHolds, legalHoldSubjects, requests } from '../../db/schema';
import { Purpose } from '../../domain/catalog';
import type { Services } from '../../runtime/services';
import { ApiError } from '../errors';
import { SEARCH_FIELDS, subjectLookup } from '../subject-lookup';
import { can, type Capability } from './capabilities';
import { formatDate } from './format';
import type { ConsoleEnv, ProblemKey, Status } from './index';
import { Csrf, Flash, Layout, Problem, type View } from './layout';
import { SUBJECT_TEXT } from './subject-text';
import { PostForm } from './forms';
import { DataTable } from './table';

/** The helpers of the console app the Subjects pages render and refuse with. */
export interface ConsoleKit {
  render: (c: Context<ConsoleEnv>, status: Status, page: JSX.Element) => Promise<Response>;
  problemPage: (c: Context<ConsoleEnv>, status: Status, problem: ProblemKey, extra?: string) => Promise<Response>;
  allowed: (c: Context<ConsoleEnv>, capability: Capability) => boolean;
  refused: (c: Context<ConsoleEnv>, err: unknown) => Promise<Response>;
  formOf: (c: Context<ConsoleEnv>) => Promise<Record<string, string>>;
}

const BY = ['externalRef', ...SEARCH_FIELDS] as const;
type By = (typeof BY)[number];

/** The search form: the term is personal data, so it comes in a POST body, never in a URL that is logged or kept. */
const SearchForm = z
  .object({
    by: z.enum(BY),
    value: z.string().trim().min(1).max(254),
    purpose: z.union([z.literal(''), Purpose]).optional(),
  })
  .refine((f) => f.by === 'externalRef' || f.purpose, {
    error: 'a search by this field needs a purpose',
    path: ['purpose'],
  });
const RevealForm = z.object({ purpose: Purpose });
const Uuid = z.uuid().transform((id) => id.toLowerCase());

interface SubjectFacts {
  requests: { id: string; type: string; status: string; receivedAt: Date; dueAt: Date }[];
  holds: { id: string; status: string; reason: string; createdAt: Date }[];
}
interface Reveal {
  purpose: string;
  revealed: string[];
}

const SearchPage: FC<{
  v: View;
  searchable: { field: By; purposes: string[] }[];
  results?: SubjectView[] | undefined;
  problem?: string | undefined;
}> = ({ v, searchable, results, problem }) => {
  const t = SUBJECT_TEXT[v.lang];
  const purposes = [...new Set(searchable.flatMap((s) => s.purposes))].sort();
  return (
    <Layout v={v} title={t.title}>
      <Problem text={problem} />
      <section aria-labelledby="find">
        <h2 id="find">{t.find}</h2>
        <form method="post" action="/console/subjects/search" class="filters" autocomplete="off">
          <Csrf v={v} />
          <label>
            {t.by}
            <br />
            <select name="by">
              {searchable.map((s) => (
                <option value={s.field}>{t.byField[s.field]}</option>
              ))}
            </select>
          </label>
          <label>
            {t.value}
            <br />
            <input name="value" required maxlength={254} autocomplete="off" />
          </label>
          {purposes.length ? (
            <label>
              {t.purpose}
              <br />
              <select name="purpose">
                <option value="">{t.choosePurpose}</option>
                {purposes.map((p) => (
                  <option value={p}>{p}</option>
                ))}
              </select>
            </label>
          ) : null}
          <button class="primary" type="submit">
            {t.search}
          </button>
        </form>
        {purposes.length ? <p>{t.purposeHelp}</p> : null}
      </section>
      {results ? (
        <section aria-labelledby="results">
          <h2 id="results">
            {t.results}: {t.matches(results.length)}
          </h2>
          <DataTable
            rows={results}
            empty={t.noMatch}
            rowClass="subject-row"
            columns={[
              { head: t.externalRef, cell: (s) => <a href={`/console/subjects/${s.id}`}>{s.externalRef}</a> },
              { head: t.jurisdiction, cell: (s) => s.jurisdiction },
              {
                head: t.status,
                cell: (s) => (
                  <>
                    {s.status}
                    {s.legalHold ? ` · ${t.legalHold}` : ''}
                  </>
                ),
              },
              {
                head: t.fields,
                cell: (s) =>
                  Object.entries(s.fields)
                    .map(([name, f]) => `${name}: ${f.value ?? '—'}`)
                    .join(' · '),
                class: 'mono',
              },
            ]}
          />
        </section>
      ) : null}
    </Layout>
  );
};

const SubjectPage: FC<{
  v: View;
  s: SubjectView;
  facts: SubjectFacts;
  purposes: string[];
  reveal?: Reveal | undefined;
  problem?: string | undefined;
}> = ({ v, s, facts, purposes, reveal, problem }) => {
  const t = SUBJECT_TEXT[v.lang];
  const date = formatDate(v.lang);
  const role = v.user!.role;
  return (
    <Layout v={v} title={`${t.subject}: ${s.externalRef}`}>
      <Flash text={reveal ? t.revealedFor(reveal.purpose, reveal.revealed) : undefined} />
      <Problem text={problem} />
      <section aria-labelledby="facts">
        <h2 id="facts" class="mono">
          {s.id}
        </h2>
        <dl>
          <dt>{t.externalRef}</dt>
          <dd>{s.externalRef}</dd>
          <dt>{t.jurisdiction}</dt>
          <dd>{s.jurisdiction}</dd>
          <dt>{t.locale}</dt>
          <dd>{s.locale}</dd>
          <dt>{t.status}</dt>
          <dd>{s.status}</dd>
          <dt>{t.retentionUntil}</dt>
          <dd>{s.retentionUntil ?? '—'}</dd>
          <dt>{t.legalHold}</dt>
          <dd>{s.legalHold ? t.yes : t.no}</dd>
        </dl>
      </section>
      <section aria-labelledby="fields">
        <h2 id="fields">{t.fields}</h2>
        <DataTable
          rows={Object.entries(s.fields)}
          rowClass="field-row"
          rowId={([name]) => `field-${name}`}
          columns={[
            { head: t.field, cell: ([name]) => name, rowHeader: true },
            { head: t.classification, cell: ([, f]) => f.classification },
            {
              head: t.fieldValue,
              cell: ([, f]) => (f.value === null ? t.shredded : String(f.value)),
              class: 'mono field-value',
            },
            {
              cell: ([name, f]) => (
                <>
                  {f.value === null ? '' : f.masked ? t.masked : reveal?.revealed.includes(name) ? t.revealed : t.shown}
                  {f.underObjection ? ` · ${t.underObjection}` : ''}
                </>
              ),
            },
          ]}
        />
        {can(role, 'revealSubject') && s.status !== 'destroyed' ? (
          <PostForm v={v} action={`/console/subjects/${s.id}/reveal`} submit={t.reveal}>
            <p>{t.revealHelp}</p>
            <label for="reveal-purpose">{t.purpose}</label>
            <select id="reveal-purpose" name="purpose" required>
              <option value="">{t.choosePurpose}</option>
              {purposes.map((p) => (
                <option value={p}>{p}</option>
              ))}
            </select>
          </PostForm>
        ) : null}
      </section>
      <section aria-labelledby="consents">
        <h2 id="consents">{t.consents}</h2>
        <DataTable
          rows={s.consents}
          empty={t.noConsents}
          rowClass="consent-row"
          columns={[
            { head: t.purpose, cell: (k) => k.purpose },
            { head: t.legalBasis, cell: (k) => k.legalBasis ?? '—' },
            { head: t.consentStatus, cell: (k) => k.status ?? '—' },
            { head: t.validUntil, cell: (k) => date(k.validUntil) || '—' },
            { head: t.restricted, cell: (k) => (k.restricted ? t.yes : t.no) },
            { head: t.revealNow, cell: (k) => k.refusal ?? t.allowed },
          ]}
        />
      </section>
      <section aria-labelledby="requests">
        <h2 id="requests">{t.requests}</h2>
        <DataTable
          rows={facts.requests}
          empty={t.noRequests}
          rowClass="request-row"
          columns={[
            { head: t.type, cell: (r) => <a href={`/console/requests/${r.id}`}>{r.type}</a> },
            { head: t.status, cell: (r) => r.status },
            { head: t.received, cell: (r) => date(r.receivedAt) },
            { head: t.due, cell: (r) => date(r.dueAt) },
          ]}
        />
      </section>
      <section aria-labelledby="holds">
        <h2 id="holds">{t.holds}</h2>
        <DataTable
          rows={facts.holds}
          empty={t.noHolds}
          rowClass="hold-row"
          columns={[
            { head: t.hold, cell: (h) => h.id, class: 'mono' },
            { head: t.status, cell: (h) => h.status },
            { head: t.reason, cell: (h) => h.reason },
            { head: t.placed, cell: (h) => date(h.createdAt) },
          ]}
        />
      </section>
    </Layout>
  );
};

/**
 * The Subjects pages at /console/subjects: find a subject by external reference or through the blind index (a POST:
 * the term never enters a URL), see it masked with its consents, requests and holds, and reveal fields for a
 * purpose. Everything goes through `subjectLookup`, the API's own search, grant check, consent gate and audit.
 */
export const registerSubjectPages = (app: Hono<ConsoleEnv>, services: Services, kit: ConsoleKit) => {
  const { db } = services.database;
  const lookup = subjectLookup(services);
  const principal = (c: Context<ConsoleEnv>) => c.get('session')!.principal;

  /** The ways this role may search: by external reference, and the blind-indexed fields if it may search those. */
  const searchable = (c: Context<ConsoleEnv>): { field: By; purposes: string[] }[] => [
    ...(kit.allowed(c, 'findSubjects') ? [{ field: 'externalRef' as const, purposes: [] }] : []),
    ...(kit.allowed(c, 'searchSubjects') ? lookup.searchable() : []),
  ];

  const factsOf = async (subjectId: string): Promise<SubjectFacts> => ({
    requests: await db
      .select({
        id: requests.id,
        type: requests.type,
        status: requests.status,
        receivedAt: requests.receivedAt,
        dueAt: requests.dueAt,
      })
      .from(requests)
      .where(eq(requests.subjectId, subjectId))
      .orderBy(desc(requests.receivedAt))
      .limit(50),
    holds: await db
      .select({
        id: legalHolds.id,
        status: legalHolds.status,
        reason: legalHolds.reason,
        createdAt: legalHolds.createdAt,
      })
      .from(legalHoldSubjects)
      .innerJoin(legalHolds, eq(legalHolds.id, legalHoldSubjects.holdId))
      .where(eq(legalHoldSubjects.subjectId, subjectId))
      .orderBy(desc(legalHolds.createdAt)),
  });

  const subjectPage = async (
    c: Context<ConsoleEnv>,
    status: Status,
    s: SubjectView,
    o: { reveal?: Reveal; problem?: string } = {},
  ) =>
    kit.render(
      c,
      status,
      <SubjectPage v={c.get('view')} s={s} facts={await factsOf(s.id)} purposes={lookup.purposes()} {...o} />,
    );

  app.get('/subjects', (c) => {
    if (!kit.allowed(c, 'findSubjects')) return kit.problemPage(c, 403, 'forbidden');
    return kit.render(c, 200, <SearchPage v={c.get('view')} searchable={searchable(c)} />);
  });

  app.post('/subjects/search', async (c) => {
    if (!kit.allowed(c, 'findSubjects')) return kit.problemPage(c, 403, 'forbidden');
    const v = c.get('view');
    const ways = searchable(c);
    const page = (status: Status, o: { results?: SubjectView[]; problem?: string }) =>
      kit.render(c, status, <SearchPage v={v} searchable={ways} {...o} />);
    const parsed = SearchForm.safeParse(await kit.formOf(c));
    if (!parsed.success) {
      // The field's name only: zod's message could quote the term.
      const field = parsed.error.issues[0]?.path.join('.');
      return page(400, { problem: `${v.t.problems['bad-form']} ${field ?? ''}`.trim() });
    }
    const { by, value, purpose } = parsed.data;
    if (!ways.some((w) => w.field === by)) return kit.problemPage(c, 403, 'forbidden');
    try {
      const results =
        by === 'externalRef'
          ? await lookup.findByExternalRef(value)
          : await lookup.search(principal(c), by, value, purpose!);
      return page(200, { results });
    } catch (err) {
      if (err instanceof ApiError && err.status === 429)
        return page(429, { problem: SUBJECT_TEXT[v.lang].tooMany(err.retryAfterSeconds ?? 1) });
      return kit.refused(c, err);
    }
  });

  app.get('/subjects/:id', async (c) => {
    if (!kit.allowed(c, 'viewSubject')) return kit.problemPage(c, 403, 'forbidden');
    const id = Uuid.safeParse(c.req.param('id'));
    const s = id.success ? await lookup.get(id.data) : undefined;
    if (!s) return kit.problemPage(c, 404, 'not-found');
    return subjectPage(c, 200, s);
  });

  app.post('/subjects/:id/reveal', async (c) => {
    if (!kit.allowed(c, 'revealSubject')) return kit.problemPage(c, 403, 'forbidden');
    const id = Uuid.safeParse(c.req.param('id'));
    const s = id.success ? await lookup.get(id.data) : undefined;
    if (!s) return kit.problemPage(c, 404, 'not-found');
    const v = c.get('view');
    const parsed = RevealForm.safeParse(await kit.formOf(c));
    if (!parsed.success) return subjectPage(c, 400, s, { problem: `${v.t.problems['bad-form']} purpose` });
    try {
      const { reveal, ...revealed } = await lookup.reveal(principal(c), s.id, parsed.data.purpose);
      return subjectPage(c, 200, revealed, { reveal });
    } catch (err) {
      if (err instanceof ApiError && err.status === 403)
        return subjectPage(c, 403, s, { problem: SUBJECT_TEXT[v.lang].revealRefused(err.code) });
      if (err instanceof ApiError && err.status === 400)
        return subjectPage(c, 400, s, { problem: `${v.t.problems['bad-form']} purpose` });
      return kit.refused(c, err);
    }
  });
};
