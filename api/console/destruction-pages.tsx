import { asc, desc, eq, inArray, notInArray } from 'drizzle-orm';
import type { Context, Hono } from 'hono';
import type { FC } from 'hono/jsx';
import { z } from 'zod';
import { verifyCertificate, type CertificateVerification } from '../../activities/certificates';
import { destructionDetail } from '../../activities/destruction-records';
import type { Db } from '../../db/client';
import { destructions } from '../../db/schema';
import { ApprovalRequest, CancelRequest, FINAL_STATUSES } from '../../domain/destruction';
import type { Services } from '../../runtime/services';
import { destructionActions } from '../destruction-updates';
import { can } from './capabilities';
import { DESTRUCTION_TEXT } from './destruction-text';
import { formatDate, formatDuration } from './format';
import type { ConsoleEnv } from './index';
import { Csrf, Flash, Layout, type View } from './layout';
import type { ConsoleKit } from './subject-pages';
import { PostForm } from './forms';
import { DataTable } from './table';

type Detail = NonNullable<Awaited<ReturnType<typeof destructionDetail>>>;
type Row = Pick<
  typeof destructions.$inferSelect,
  'id' | 'status' | 'requestedBy' | 'createdAt' | 'matched' | 'held' | 'targeted' | 'approvalDeadline' | 'graceUntil'
> & { approvals: unknown[] };

const Uuid = z.uuid().transform((id) => id.toLowerCase());
const LIST_COLUMNS = {
  id: destructions.id,
  status: destructions.status,
  requestedBy: destructions.requestedBy,
  createdAt: destructions.createdAt,
  matched: destructions.matched,
  held: destructions.held,
  targeted: destructions.targeted,
  approvals: destructions.approvals,
  approvalDeadline: destructions.approvalDeadline,
  graceUntil: destructions.graceUntil,
};

/** Requests awaiting approval, the oldest (nearest its approval deadline) first: Today's list and the list's head. */
export const waitingDestructions = (db: Db, limit = 50): Promise<Row[]> =>
  db
    .select(LIST_COLUMNS)
    .from(destructions)
    .where(eq(destructions.status, 'awaiting-approval'))
    .orderBy(asc(destructions.approvalDeadline), asc(destructions.id))
    .limit(limit);

/** The time left until `at` as of now, or "passed". */
const left = (v: View, at: Date | string | null, now: number) => {
  if (!at) return '';
  const ms = new Date(at).getTime() - now;
  return ms > 0 ? `${DESTRUCTION_TEXT[v.lang].timeLeft} ${formatDuration(ms)}` : DESTRUCTION_TEXT[v.lang].expired;
};

const ListTable: FC<{ v: View; rows: Row[]; now: number; id?: string }> = ({ v, rows, now, id }) => {
  const t = DESTRUCTION_TEXT[v.lang];
  const date = formatDate(v.lang);
  return (
    <DataTable
      id={id}
      rows={rows}
      empty={t.none}
      rowClass="destruction-row"
      columns={[
        { head: t.requested, cell: (r) => <a href={`/console/destructions/${r.id}`}>{date(r.createdAt)}</a> },
        {
          head: t.status,
          cell: (r) => (
            <>
              {r.status}
              {r.status === 'awaiting-approval' ? ` · ${left(v, r.approvalDeadline, now)}` : ''}
              {r.status === 'grace' ? ` · ${left(v, r.graceUntil, now)}` : ''}
            </>
          ),
        },
        { head: t.requestedBy, cell: (r) => r.requestedBy, class: 'mono' },
        {
          head: t.targeted,
          cell: (r) => (
            <>
              {r.targeted} ({t.held}: {r.held})
            </>
          ),
        },
        { head: t.approvals, cell: (r) => t.approvalsOf(r.approvals.length) },
      ]}
    />
  );
};

/** Today's section: the destructions waiting for approval, for the roles that may read one. */
export const TodayDestructions: FC<{ v: View; rows?: Row[] | undefined; now: number }> = ({ v, rows, now }) => {
  if (!rows) return null;
  const t = DESTRUCTION_TEXT[v.lang];
  return (
    <section aria-labelledby="destructions-waiting">
      <h2 id="destructions-waiting">{t.waiting}</h2>
      {rows.length === 0 ? <p>{t.noneWaiting}</p> : <ListTable v={v} rows={rows} now={now} />}
      <p>
        <a href="/console/destructions">{t.title}</a>
      </p>
    </section>
  );
};

const ListPage: FC<{ v: View; waiting: Row[]; open: Row[]; finished: Row[]; now: number }> = ({
  v,
  waiting,
  open,
  finished,
  now,
}) => {
  const t = DESTRUCTION_TEXT[v.lang];
  return (
    <Layout v={v} title={t.title}>
      <section aria-labelledby="waiting">
        <h2 id="waiting">{t.waiting}</h2>
        <ListTable v={v} rows={waiting} now={now} id="waiting-list" />
      </section>
      <section aria-labelledby="open">
        <h2 id="open">{t.open}</h2>
        <ListTable v={v} rows={open} now={now} />
      </section>
      <section aria-labelledby="finished">
        <h2 id="finished">{t.finished}</h2>
        <ListTable v={v} rows={finished} now={now} />
      </section>
    </Layout>
  );
};

const scopeText = (v: View, scope: Record<string, unknown>) => {
  const t = DESTRUCTION_TEXT[v.lang].scopeKind;
  const ids = Array.isArray(scope.subjectIds) ? scope.subjectIds.length : null;
  switch (scope.kind) {
    case 'subjects':
      return t.subjects(ids ?? 0);
    case 'retentionExpired':
      return t.retentionExpired;
    case 'consentWithdrawn':
      return t.consentWithdrawn(String(scope.purpose));
    case 'fields':
      return t.fields((scope.fields as string[]).join(', '), ids);
    default:
      return String(scope.kind);
  }
};

const DetailPage: FC<{
  v: View;
  d: Detail;
  verification: CertificateVerification | null | undefined;
  now: number;
  flash?: string | undefined;
}> = ({ v, d, verification, now, flash }) => {
  const t = DESTRUCTION_TEXT[v.lang];
  const date = formatDate(v.lang);
  const user = v.user!;
  const requester = d.requestedBy === `user:${user.userId}`;
  const mine = d.approvals.find((a) => a.userId === user.userId);
  const mayDecide = can(user.role, 'approveDestruction') && !requester && !mine && d.status === 'awaiting-approval';
  const mayCancel = can(user.role, 'cancelDestruction') && (d.status === 'awaiting-approval' || d.status === 'grace');
  const approved = d.approvals.filter((a) => a.decision === 'approve').length;
  return (
    <Layout v={v} title={`${t.one}: ${date(d.createdAt)}`}>
      <Flash text={flash} />
      <section aria-labelledby="facts">
        <h2 id="facts" class="mono">
          {d.id}
        </h2>
        <dl>
          <dt>{t.status}</dt>
          <dd id="destruction-status">{d.status}</dd>
          <dt>{t.requestedBy}</dt>
          <dd class="mono">{d.requestedBy}</dd>
          <dt>{t.requested}</dt>
          <dd>{date(d.createdAt)}</dd>
          <dt>{t.reason}</dt>
          <dd id="destruction-reason">{d.reason ?? '—'}</dd>
          {d.origin ? (
            <>
              <dt>{t.origin}</dt>
              <dd class="mono">{Object.values(d.origin).join(' ')}</dd>
            </>
          ) : null}
          <dt>{t.scope}</dt>
          <dd>{scopeText(v, d.scope)}</dd>
          <dt>{t.matched}</dt>
          <dd id="scope-matched">{d.matched}</dd>
          <dt>{t.held}</dt>
          <dd id="scope-held">{d.held}</dd>
          <dt>{t.targeted}</dt>
          <dd id="scope-targeted">{d.targeted}</dd>
          {d.outcome ? (
            <>
              <dt>{t.outcome}</dt>
              <dd>{d.outcome}</dd>
            </>
          ) : null}
          {d.cancelReason ? (
            <>
              <dt>{t.cancelledReason}</dt>
              <dd>{d.cancelReason}</dd>
            </>
          ) : null}
          {d.subjectsDestroyed || d.fieldRowsDeleted ? (
            <>
              <dt>{t.destroyed}</dt>
              <dd>{t.destroyedCounts(d.subjectsDestroyed, d.keysDestroyed, d.fieldRowsDeleted)}</dd>
            </>
          ) : null}
        </dl>
      </section>
      <section aria-labelledby="approvals">
        <h2 id="approvals">
          {t.approvals}: {t.approvalsOf(approved)}
        </h2>
        {d.autoApproved ? <p>{t.autoApproved}</p> : null}
        {d.approvals.length === 0 ? (
          <p>{t.noApprovals}</p>
        ) : (
          <ol id="approval-list">
            {d.approvals.map((a) => (
              <li>
                <span class="mono">{a.actor}</span> · <strong>{t.decision[a.decision] ?? a.decision}</strong> ·{' '}
                {date(new Date(a.at))}
                {a.comment ? ` · ${a.comment}` : ''}
              </li>
            ))}
          </ol>
        )}
        {d.status === 'awaiting-approval' && d.approvalDeadline ? (
          <p>
            {t.approvalDeadline}: {date(d.approvalDeadline)} ({left(v, d.approvalDeadline, now)})
          </p>
        ) : null}
        {requester ? <p>{t.youRequested}</p> : null}
        {mine ? <p>{t.youDecided(t.decision[mine.decision] ?? mine.decision)}</p> : null}
        {mayDecide ? (
          <form method="post" action={`/console/destructions/${d.id}/approvals`}>
            <Csrf v={v} />
            <h3>{t.decide}</h3>
            <label for="comment">{t.comment}</label>
            <textarea id="comment" name="comment" required maxlength={2000} />
            <p>
              <button class="primary" type="submit" name="decision" value="approve">
                {t.approve}
              </button>{' '}
              <button type="submit" name="decision" value="reject">
                {t.reject}
              </button>
            </p>
          </form>
        ) : null}
      </section>
      {d.status === 'grace' || mayCancel ? (
        <section aria-labelledby="grace">
          <h2 id="grace">{t.grace}</h2>
          {d.status === 'grace' && d.graceUntil ? (
            <p id="grace-left">
              {t.graceLeft(formatDuration(Math.max(0, new Date(d.graceUntil).getTime() - now)))} ({t.graceEnds}:{' '}
              {date(d.graceUntil)})
            </p>
          ) : null}
          {mayCancel ? (
            <PostForm v={v} action={`/console/destructions/${d.id}/cancel`} submit={t.cancel}>
              <label for="cancel-reason">{t.cancelReason}</label>
              <textarea id="cancel-reason" name="reason" required minlength={3} maxlength={2000} />
            </PostForm>
          ) : null}
        </section>
      ) : null}
      <section aria-labelledby="certificate">
        <h2 id="certificate">{t.certificate}</h2>
        {d.certificate ? (
          <dl id="certificate-facts">
            <dt>{t.certificateId}</dt>
            <dd class="mono" id="certificate-id">
              {d.certificate.id}
            </dd>
            <dt>{t.sha256}</dt>
            <dd class="mono">{d.certificate.sha256}</dd>
            <dt>{t.keyId}</dt>
            <dd class="mono">{d.certificate.signature.keyId}</dd>
            <dt>{t.verification}</dt>
            <dd id="certificate-verification">
              {verification === undefined ? (
                t.verifyNeedsRole
              ) : verification === null ? (
                '—'
              ) : verification.valid ? (
                t.verified
              ) : (
                <span class="late">
                  {t.notVerified} {t.signature} {verification.signature ? t.ok : t.bad}, {t.digest}{' '}
                  {verification.digest ? t.ok : t.bad}, {t.auditEntry} {verification.auditEntry ? t.ok : t.bad}
                  {verification.reasons.length ? ` — ${verification.reasons.join('; ')}` : ''}
                </span>
              )}
            </dd>
          </dl>
        ) : (
          <p>{t.noCertificate}</p>
        )}
      </section>
    </Layout>
  );
};

/**
 * The Destruction pages: the list (waiting for approval first) and one request with its scope, approvals, grace
 * window and certificate. Approve / Reject and Cancel run the same functions as the API's routes
 * (api/destruction-updates.ts); the certificate is verified by the verify route's own function.
 */
export const registerDestructionPages = (app: Hono<ConsoleEnv>, services: Services, kit: ConsoleKit) => {
  const { db } = services.database;
  const { clock, keyring } = services;
  const actions = destructionActions(services);
  const principal = (c: Context<ConsoleEnv>) => c.get('session')!.principal;

  app.get('/destructions', async (c) => {
    if (!kit.allowed(c, 'viewDestruction')) return kit.problemPage(c, 403, 'forbidden');
    const [waiting, open, finished] = await Promise.all([
      waitingDestructions(db, 200),
      db
        .select(LIST_COLUMNS)
        .from(destructions)
        .where(notInArray(destructions.status, [...FINAL_STATUSES, 'awaiting-approval']))
        .orderBy(desc(destructions.createdAt), desc(destructions.id))
        .limit(200),
      db
        .select(LIST_COLUMNS)
        .from(destructions)
        .where(inArray(destructions.status, [...FINAL_STATUSES]))
        .orderBy(desc(destructions.createdAt), desc(destructions.id))
        .limit(50),
    ]);
    const now = clock().getTime();
    return kit.render(
      c,
      200,
      <ListPage v={c.get('view')} waiting={waiting} open={open} finished={finished} now={now} />,
    );
  });

  app.get('/destructions/:id', async (c) => {
    if (!kit.allowed(c, 'viewDestruction')) return kit.problemPage(c, 403, 'forbidden');
    const id = Uuid.safeParse(c.req.param('id'));
    if (!id.success) return kit.problemPage(c, 404, 'not-found');
    const d = await destructionDetail(db, id.data);
    if (!d) return kit.problemPage(c, 404, 'not-found');
    // Verified by the verify route's function, for the roles that route allows (undefined: not shown).
    const verification =
      d.certificate && kit.allowed(c, 'verifyCertificate')
        ? ((await verifyCertificate(db, keyring, d.certificate.id)) ?? null)
        : undefined;
    const v = c.get('view');
    const texts = DESTRUCTION_TEXT[v.lang].done;
    const done = c.req.query('done');
    const flash = done && Object.hasOwn(texts, done) ? texts[done as keyof typeof texts] : undefined;
    return kit.render(
      c,
      200,
      <DetailPage v={v} d={d} verification={verification} now={clock().getTime()} flash={flash} />,
    );
  });

  /** Approve or reject: the API's roles (approver), body schema and update; the workflow refuses the requester. */
  app.post('/destructions/:id/approvals', async (c) => {
    if (!kit.allowed(c, 'approveDestruction')) return kit.problemPage(c, 403, 'forbidden');
    const id = Uuid.safeParse(c.req.param('id'));
    if (!id.success) return kit.problemPage(c, 404, 'not-found');
    const form = await kit.formOf(c);
    const body = ApprovalRequest.safeParse({ decision: form.decision, comment: form.comment });
    if (!body.success) return kit.problemPage(c, 400, 'bad-form', body.error.issues[0]?.path.join('.'));
    let done: string;
    try {
      const r = await actions.approve(id.data, principal(c), body.data);
      done = !r.counted ? 'again' : body.data.decision === 'approve' ? 'approved' : 'rejected';
    } catch (err) {
      return kit.refused(c, err);
    }
    return c.redirect(`/console/destructions/${id.data}?done=${done}`, 303);
  });

  app.post('/destructions/:id/cancel', async (c) => {
    if (!kit.allowed(c, 'cancelDestruction')) return kit.problemPage(c, 403, 'forbidden');
    const id = Uuid.safeParse(c.req.param('id'));
    if (!id.success) return kit.problemPage(c, 404, 'not-found');
    const body = CancelRequest.safeParse({ reason: (await kit.formOf(c)).reason });
    if (!body.success) return kit.problemPage(c, 400, 'bad-form', body.error.issues[0]?.path.join('.'));
    try {
      await actions.cancel(id.data, principal(c), body.data);
    } catch (err) {
      return kit.refused(c, err);
    }
    return c.redirect(`/console/destructions/${id.data}?done=cancelled`, 303);
  });
};
