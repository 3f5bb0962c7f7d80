import type { Context, Hono } from 'hono';
import type { FC } from 'hono/jsx';
import { z } from 'zod';
import {
  completeObligation,
  completionsOf,
  findObligation,
  listObligations,
  type Obligation,
  type ObligationCompletionRow,
} from '../../activities/obligations';
import type { Db } from '../../db/client';
import {
  ObligationCompletion,
  obligationStatus,
  obligationSummary,
  type ObligationStatus,
  type ObligationSummary,
} from '../../domain/obligations';
import type { Services } from '../../runtime/services';
import { actorOf } from '../auth';
import { can } from './capabilities';
import { formatDate, formatDuration } from './format';
import type { ConsoleEnv } from './index';
import { Flash, Layout, type View } from './layout';
import { OBLIGATION_TEXT } from './obligation-text';
import type { ConsoleKit } from './subject-pages';
import { PostForm } from './forms';
import { DataTable } from './table';

const Uuid = z.uuid().transform((id) => id.toLowerCase());
const optional = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v);

export interface ObligationRow extends ObligationSummary {
  nextDueAt: Date;
  status: ObligationStatus;
  /** Until the due date as of the page's read; negative when overdue. */
  timeLeftMs: number;
  lastCompletedAt: Date | null;
}

const rowOf = (o: Obligation, now: Date): ObligationRow => ({
  ...obligationSummary(o),
  nextDueAt: o.nextDueAt,
  status: obligationStatus(o, now),
  timeLeftMs: o.nextDueAt.getTime() - now.getTime(),
  lastCompletedAt: o.lastCompletedAt,
});

/** The calendar as the API lists it (GET /v1/obligations: by due date, defaults seeded on first use). */
export const calendar = async (db: Db, now: Date): Promise<ObligationRow[]> =>
  (await listObligations(db, now)).map((o) => rowOf(o, now));

/** Today's "obligations due": those within their reminder lead or overdue, the nearest due date first. */
export const dueObligations = async (db: Db, now: Date): Promise<ObligationRow[]> =>
  (await calendar(db, now)).filter((o) => o.status !== 'scheduled');

const Due: FC<{ v: View; o: ObligationRow }> = ({ v, o }) => {
  const t = OBLIGATION_TEXT[v.lang];
  return (
    <span class={o.status === 'overdue' ? 'late' : undefined}>
      {formatDate(v.lang)(o.nextDueAt)} —{' '}
      {o.timeLeftMs < 0 ? t.overdueBy(formatDuration(-o.timeLeftMs)) : t.timeLeft(formatDuration(o.timeLeftMs))}
    </span>
  );
};

const Owner: FC<{ v: View; o: Pick<ObligationRow, 'ownerId'> }> = ({ v, o }) =>
  o.ownerId ? <span class="mono">user:{o.ownerId}</span> : <span>{OBLIGATION_TEXT[v.lang].everyOwner}</span>;

const Evidence: FC<{ v: View; c: ObligationCompletionRow }> = ({ v, c }) => {
  const t = OBLIGATION_TEXT[v.lang];
  const date = formatDate(v.lang);
  return (
    <>
      {t.completedBy(c.completedBy, date(c.completedAt))} ({t.forDueDate(date(c.dueAt))})
      {c.evidenceNote ? (
        <>
          <br />
          {t.note}: {c.evidenceNote}
        </>
      ) : null}
      {c.evidenceSha256 ? (
        <>
          <br />
          SHA-256: <span class="mono">{c.evidenceSha256}</span>
        </>
      ) : null}
    </>
  );
};

export const TodayObligations: FC<{ v: View; rows?: ObligationRow[] | undefined }> = ({ v, rows }) => {
  if (!rows) return null;
  const t = OBLIGATION_TEXT[v.lang];
  return (
    <section aria-labelledby="obligations-due">
      <h2 id="obligations-due">{t.due}</h2>
      {rows.length === 0 ? (
        <p>{t.noneDue}</p>
      ) : (
        <ul id="obligations-due-list">
          {rows.map((o) => (
            <li>
              <a href={`/console/obligations/${o.id}`}>{o.title}</a> · {t.statuses[o.status]} · <Due v={v} o={o} />
            </li>
          ))}
        </ul>
      )}
      <p>
        <a href="/console/obligations">{t.nav}</a>
      </p>
    </section>
  );
};

const ListPage: FC<{ v: View; rows: ObligationRow[]; latest: (ObligationCompletionRow | undefined)[] }> = ({
  v,
  rows,
  latest,
}) => {
  const t = OBLIGATION_TEXT[v.lang];
  return (
    <Layout v={v} title={t.title}>
      <section>
        <DataTable
          rows={rows}
          rowClass="obligation-row"
          rowId={(o) => `obligation-${o.key}`}
          columns={[
            {
              head: t.obligation,
              cell: (o) => (
                <>
                  <a href={`/console/obligations/${o.id}`}>{o.title}</a>
                  <br />
                  <span class="mono">{o.key}</span> · {t.recurrence(o.recurrenceMonths)}
                </>
              ),
            },
            { head: t.owner, cell: (o) => <Owner v={v} o={o} /> },
            { head: t.nextDue, cell: (o) => <Due v={v} o={o} /> },
            { head: t.status, cell: (o) => t.statuses[o.status], class: 'obligation-status' },
            {
              head: t.lastEvidence,
              cell: (_, i) => (latest[i] ? <Evidence v={v} c={latest[i]} /> : t.noEvidence),
              class: 'obligation-evidence',
            },
          ]}
        />
      </section>
    </Layout>
  );
};

const DetailPage: FC<{
  v: View;
  o: ObligationRow;
  completions: ObligationCompletionRow[];
  flash?: string | undefined;
}> = ({ v, o, completions, flash }) => {
  const t = OBLIGATION_TEXT[v.lang];
  const mayComplete = can(v.user!.role, 'completeObligation');
  return (
    <Layout v={v} title={`${t.obligation}: ${o.title}`}>
      <Flash text={flash} />
      <section aria-labelledby="facts">
        <h2 id="facts" class="mono">
          {o.key}
        </h2>
        <dl>
          <dt>{t.source}</dt>
          <dd>{o.source}</dd>
          <dt>{t.owner}</dt>
          <dd>
            <Owner v={v} o={o} />
          </dd>
          <dt>{t.nextDue}</dt>
          <dd>
            <Due v={v} o={o} /> · {t.recurrence(o.recurrenceMonths)}
          </dd>
          <dt>{t.status}</dt>
          <dd id="obligation-status">{t.statuses[o.status]}</dd>
        </dl>
      </section>
      <section aria-labelledby="complete">
        <h2 id="complete">{t.complete}</h2>
        {mayComplete ? (
          <PostForm v={v} action={`/console/obligations/${o.id}/complete`} submit={t.complete} primary>
            <input type="hidden" name="dueAt" value={o.nextDueAt.toISOString()} />
            <p>{t.completeHelp}</p>
            <label for="evidence-note">{t.note}</label>
            <textarea id="evidence-note" name="evidenceNote" maxlength={2000} />
            <label for="evidence-sha256">{t.fileSha256}</label>
            <input
              id="evidence-sha256"
              name="evidenceSha256"
              class="mono"
              size={66}
              maxlength={64}
              pattern="[0-9a-fA-F]{64}"
            />
          </PostForm>
        ) : (
          <p>{t.auditorNote}</p>
        )}
      </section>
      <section aria-labelledby="evidence">
        <h2 id="evidence">{t.evidence}</h2>
        {completions.length === 0 ? (
          <p>{t.noEvidence}</p>
        ) : (
          <ol id="evidence-list">
            {completions.map((c) => (
              <li>
                <Evidence v={v} c={c} />
              </li>
            ))}
          </ol>
        )}
      </section>
    </Layout>
  );
};

/**
 * The compliance calendar (the schedules page is the admin's; obligations are the owners' and auditors', as in the
 * API): the list with due dates, status and the last evidence, and one obligation with every completion and the
 * owner's "record evidence" form, through the functions GET /v1/obligations[/{id}] and POST …/complete call.
 */
export const registerObligationPages = (app: Hono<ConsoleEnv>, services: Services, kit: ConsoleKit) => {
  const { db } = services.database;
  const { clock } = services;

  app.get('/obligations', async (c) => {
    if (!kit.allowed(c, 'viewObligations')) return kit.problemPage(c, 403, 'forbidden');
    const rows = await calendar(db, clock());
    const latest = await Promise.all(rows.map(async (o) => (await completionsOf(db, o.id))[0]));
    return kit.render(c, 200, <ListPage v={c.get('view')} rows={rows} latest={latest} />);
  });

  app.get('/obligations/:id', async (c) => {
    if (!kit.allowed(c, 'viewObligation')) return kit.problemPage(c, 403, 'forbidden');
    const id = Uuid.safeParse(c.req.param('id'));
    if (!id.success) return kit.problemPage(c, 404, 'not-found');
    const obligation = await findObligation(db, id.data);
    if (!obligation) return kit.problemPage(c, 404, 'not-found');
    const v = c.get('view');
    const flash = c.req.query('done') === 'completed' ? OBLIGATION_TEXT[v.lang].completed : undefined;
    const completions = await completionsOf(db, id.data);
    return kit.render(
      c,
      200,
      <DetailPage v={v} o={rowOf(obligation, clock())} completions={completions} flash={flash} />,
    );
  });

  /** Record evidence: the API's body schema and function; the form's due date makes a resend a 409, not a second period. */
  app.post('/obligations/:id/complete', async (c: Context<ConsoleEnv>) => {
    if (!kit.allowed(c, 'completeObligation')) return kit.problemPage(c, 403, 'forbidden');
    const id = Uuid.safeParse(c.req.param('id'));
    if (!id.success) return kit.problemPage(c, 404, 'not-found');
    const form = await kit.formOf(c);
    const body = ObligationCompletion.safeParse({
      ...(optional(form.evidenceNote) && { evidenceNote: form.evidenceNote }),
      ...(optional(form.evidenceSha256) && { evidenceSha256: form.evidenceSha256!.trim() }),
    });
    if (!body.success) return kit.problemPage(c, 400, 'bad-form', body.error.issues[0]?.path.join('.'));
    const dueAt = z.iso.datetime().safeParse(form.dueAt);
    if (!dueAt.success) return kit.problemPage(c, 400, 'bad-form', 'dueAt');
    try {
      const principal = c.get('session')!.principal;
      await completeObligation(db, id.data, body.data, actorOf(principal), clock(), new Date(dueAt.data));
    } catch (err) {
      return kit.refused(c, err);
    }
    return c.redirect(`/console/obligations/${id.data}?done=completed`, 303);
  });
};
