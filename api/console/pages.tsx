import type { FC } from 'hono/jsx';
import type { AuditVerification } from '../../activities/audit-verify';
import type { ScheduleView } from '../../activities/schedules';
import type { incidentDetail } from '../../activities/incident-records';
import type { AuditRecord } from '../../domain/audit';
import { WORK_STATUSES } from '../../domain/incident';
import { CN_GRADES } from '../../domain/regulatory-clocks';
import { can } from './capabilities';
import { formatBytes, formatDate, formatDuration } from './format';
import { Csrf, Flash, Layout, Problem, type View } from './layout';
import type { TodayFacts } from './today';
import { TodayDestructions } from './destruction-pages';
import { TodayRequests } from './request-pages';
import { TodayObligations } from './obligation-pages';
import { RestoreTestDifferences, RunEvidence } from './evidence';
import { OBLIGATION_TEXT } from './obligation-text';
import { PostForm } from './forms';
import { DataTable } from './table';

export const ProblemPage: FC<{ v: View; text: string }> = ({ v, text }) => (
  <Layout v={v} title={v.t.product}>
    <Problem text={text} />
    <p>
      <a href="/console">{v.t.nav.today}</a>
    </p>
  </Layout>
);

export const SignInPage: FC<{ v: View; next: string; pre: string; problem?: string; flash?: string }> = ({
  v,
  next,
  pre,
  problem,
  flash,
}) => (
  <Layout v={v} title={v.t.signIn}>
    <Flash text={flash} />
    <Problem text={problem} />
    <section>
      <p>{v.t.signInHelp}</p>
      <form method="post" action="/console/sign-in">
        <input type="hidden" name="_csrf" value={pre} />
        <input type="hidden" name="next" value={next} />
        <label for="key">{v.t.apiKey}</label>
        <input id="key" name="key" type="password" autocomplete="off" required size={60} />
        <p>
          <button class="primary" type="submit">
            {v.t.signIn}
          </button>
        </p>
      </form>
    </section>
  </Layout>
);

export const TodayPage: FC<{ v: View; f: TodayFacts }> = ({ v, f }) => {
  const t = v.t.today;
  const date = formatDate(v.lang);
  return (
    <Layout v={v} title={t.title}>
      {f.incidents ? (
        <section aria-labelledby="incidents">
          <h2 id="incidents">{t.incidents}</h2>
          <DataTable
            rows={f.incidents}
            empty={t.noIncidents}
            columns={[
              { head: v.t.incident.title, cell: (i) => <a href={`/console/incidents/${i.id}`}>{i.title || i.id}</a> },
              { head: v.t.incident.severity, cell: (i) => i.severity },
              { head: v.t.incident.status, cell: (i) => i.status },
              {
                head: v.t.incident.escalation,
                cell: (i) =>
                  i.acknowledgedBy ? t.acknowledged(i.acknowledgedBy) : i.level ? t.level(i.level) : t.notPaged,
              },
              {
                head: t.deadline,
                cell: (i) =>
                  i.nextDeadline ? (
                    <span class={i.nextDeadline.timeLeftMs < 0 ? 'late' : undefined}>
                      {i.nextDeadline.authority} ({i.nextDeadline.kind}): {date(i.nextDeadline.dueAt)} —{' '}
                      {i.nextDeadline.timeLeftMs < 0
                        ? `${v.t.incident.overdue} ${formatDuration(-i.nextDeadline.timeLeftMs)}`
                        : formatDuration(i.nextDeadline.timeLeftMs)}
                    </span>
                  ) : (
                    t.noDeadline
                  ),
              },
            ]}
          />
        </section>
      ) : null}
      <TodayRequests v={v} rows={f.requests} />
      <TodayObligations v={v} rows={f.obligations} />
      <TodayDestructions v={v} rows={f.destructions} now={f.now} />
      {f.backup !== undefined ? (
        <section aria-labelledby="backup">
          <h2 id="backup">{t.backup}</h2>
          {f.backup === null ? (
            <p>{t.noBackup}</p>
          ) : (
            <dl>
              <dt>{v.t.backups.started}</dt>
              <dd>{date(f.backup.startedAt)}</dd>
              <dt>{v.t.backups.status}</dt>
              <dd>{f.backup.status}</dd>
              <dt>{t.age}</dt>
              <dd>{formatDuration(f.now - (f.backup.snapshotAt ?? f.backup.startedAt).getTime())}</dd>
              <dt>{v.t.backups.size}</dt>
              <dd>{formatBytes(f.backup.sizeBytes)}</dd>
              <dt>{t.restoreTest}</dt>
              <dd id="restore-test">
                {f.backup.test
                  ? `${f.backup.test.status}${f.backup.test.finishedAt ? ` · ${date(f.backup.test.finishedAt)}` : ''}`
                  : t.notTested}
              </dd>
            </dl>
          )}
          <p>
            <a href="/console/backups">{v.t.nav.backups}</a>
          </p>
        </section>
      ) : null}
      {f.campaigns ? (
        <section aria-labelledby="campaigns">
          <h2 id="campaigns">{t.campaigns}</h2>
          {f.campaigns.length === 0 ? (
            <p>{t.none}</p>
          ) : (
            <ul>
              {f.campaigns.map((c) => (
                <li>
                  <span class="mono">{c.id}</span>: {t.progress(c.targeted, c.total)}
                </li>
              ))}
            </ul>
          )}
        </section>
      ) : null}
      {f.imports ? (
        <section aria-labelledby="imports">
          <h2 id="imports">{t.imports}</h2>
          {f.imports.length === 0 ? (
            <p>{t.none}</p>
          ) : (
            <ul>
              {f.imports.map((i) => (
                <li>
                  <span class="mono">{i.id}</span>: {t.progress(i.processedLines, i.totalLines)}
                </li>
              ))}
            </ul>
          )}
        </section>
      ) : null}
    </Layout>
  );
};

type Incident = NonNullable<Awaited<ReturnType<typeof incidentDetail>>>;

/** The breach notice's fields for one language, named by their path in the API's body. */
const NoticeTexts: FC<{ v: View; locale: 'zh-CN' | 'en'; language: string }> = ({ v, locale, language }) => {
  const t = v.t.incident;
  const id = (field: string) => `notice-${locale}-${field}`;
  const name = (field: string) => `texts.${locale}.${field}`;
  return (
    <fieldset lang={locale}>
      <legend>{t.noticeIn(language)}</legend>
      {(['whatHappened', 'likelyConsequences', 'measuresTaken', 'whatYouCanDo'] as const).map((field) => (
        <>
          <label for={id(field)}>{t[field]}</label>
          <textarea id={id(field)} name={name(field)} required={field !== 'whatYouCanDo'} maxlength={4000} />
        </>
      ))}
    </fieldset>
  );
};

export const IncidentPage: FC<{ v: View; d: Incident; flash?: string; problem?: string; formKey?: string }> = ({
  v,
  d,
  flash,
  problem,
  formKey,
}) => {
  const t = v.t.incident;
  const date = formatDate(v.lang);
  const role = v.user!.role;
  const byLink = v.user!.incidentId !== undefined;
  const closed = d.status === 'closed';
  const resolved = d.status === 'resolved';
  const owed = d.deadlines.filter((x) => !x.notifiedAt);
  const escalation = d.escalation as { level?: number; round?: number } | null;
  return (
    <Layout v={v} title={`${t.title}: ${d.title}`}>
      <Flash text={flash} />
      <Problem text={problem} />
      {byLink ? <p class="note">{t.linkSession}</p> : null}
      <section aria-labelledby="facts">
        <h2 id="facts" class="mono">
          {d.id}
        </h2>
        <dl>
          <dt>{t.status}</dt>
          <dd id="incident-status">{d.status}</dd>
          <dt>{t.severity}</dt>
          <dd>{d.severity}</dd>
          <dt>{t.opened}</dt>
          <dd>{date(d.openedAt)}</dd>
          <dt>{t.escalation}</dt>
          <dd>{escalation?.level ? v.t.today.level(escalation.level) : v.t.today.notPaged}</dd>
          <dt>{t.ackBy}</dt>
          <dd id="acknowledged-by">{d.acknowledgedBy ? `${d.acknowledgedBy} · ${date(d.acknowledgedAt)}` : '—'}</dd>
          {d.grade.suggested ? (
            <>
              <dt>{t.grade}</dt>
              <dd id="grade">
                {t.gradeSuggested(t.grades[d.grade.suggested as keyof typeof t.grades], d.affectedCount)}
                {d.grade.confirmed
                  ? ` · ${t.gradeConfirmed(t.grades[d.grade.confirmed as keyof typeof t.grades], d.grade.confirmedBy ?? '')}`
                  : ''}
              </dd>
            </>
          ) : null}
        </dl>
      </section>
      {!closed && (can(role, 'ackIncident') || can(role, 'noteIncident') || can(role, 'postmortemIncident')) ? (
        <section aria-labelledby="act">
          <h2 id="act">{t.changeStatus}</h2>
          {can(role, 'ackIncident') && !d.acknowledgedBy ? (
            <form method="post" action={`/console/incidents/${d.id}/ack`}>
              <Csrf v={v} />
              <button class="primary" type="submit">
                {t.acknowledge}
              </button>
            </form>
          ) : null}
          {can(role, 'statusIncident') && !resolved ? (
            <PostForm v={v} action={`/console/incidents/${d.id}/status`} submit={t.setStatus}>
              <label for="status">{t.status}</label>
              <select id="status" name="status">
                {WORK_STATUSES.map((s) => (
                  <option value={s}>{s}</option>
                ))}
              </select>
              <label for="status-note">{t.noteOptional}</label>
              <textarea id="status-note" name="note" maxlength={20000} />
            </PostForm>
          ) : null}
          {can(role, 'noteIncident') && !resolved ? (
            <PostForm v={v} action={`/console/incidents/${d.id}/notes`} submit={t.addNote}>
              <label for="note">{t.note}</label>
              <textarea id="note" name="text" required maxlength={20000} />
            </PostForm>
          ) : null}
          {can(role, 'gradeIncident') && d.grade.suggested ? (
            <PostForm v={v} action={`/console/incidents/${d.id}/grade`} submit={t.confirmGrade}>
              <label for="grade-choice">{t.grade}</label>
              <select id="grade-choice" name="grade">
                {CN_GRADES.map((g) => (
                  <option value={g} selected={g === (d.grade.confirmed ?? d.grade.suggested)}>
                    {t.grades[g]}
                  </option>
                ))}
              </select>
            </PostForm>
          ) : null}
          {can(role, 'regulatorIncident') && !resolved && owed.length > 0 ? (
            <PostForm v={v} action={`/console/incidents/${d.id}/regulator-notifications`} submit={t.recordNotification}>
              <h3>{t.regulator}</h3>
              <label for="deadline">{t.deadline}</label>
              <select id="deadline" name="deadline">
                {owed.map((x) => (
                  <option value={x.kind}>
                    {x.kind} · {x.authority}
                  </option>
                ))}
              </select>
              <label for="authority">{t.authority}</label>
              <input id="authority" name="authority" required maxlength={200} value={owed[0]!.authority} />
              <label for="reference">{t.reference}</label>
              <input id="reference" name="reference" required maxlength={200} />
              <label for="reasons">{t.reasonsForDelay}</label>
              <textarea id="reasons" name="reasonsForDelay" maxlength={20000} />
            </PostForm>
          ) : null}
          {can(role, 'resolveIncident') && !resolved ? (
            <PostForm v={v} action={`/console/incidents/${d.id}/resolve`} submit={t.resolve}>
              <label for="summary">{t.summary}</label>
              <textarea id="summary" name="summary" required minlength={3} maxlength={20000} />
            </PostForm>
          ) : null}
          {can(role, 'postmortemIncident') && resolved ? (
            <PostForm v={v} action={`/console/incidents/${d.id}/postmortem`} submit={t.recordPostmortem}>
              <h3>{t.postmortem}</h3>
              <label for="impact">{t.impact}</label>
              <textarea id="impact" name="impact" required maxlength={50000} />
              <label for="pm-timeline">{t.pmTimeline}</label>
              <textarea id="pm-timeline" name="timeline" required maxlength={50000} />
              <label for="root-cause">{t.rootCause}</label>
              <textarea id="root-cause" name="rootCause" required maxlength={50000} />
              <label for="actions">{t.actions}</label>
              <textarea id="actions" name="actions" required maxlength={50000} />
            </PostForm>
          ) : null}
        </section>
      ) : null}
      <section aria-labelledby="deadlines">
        <h2 id="deadlines">{t.deadlines}</h2>
        <ul>
          {d.deadlines.map((x) => (
            <li class={x.late ? 'late' : undefined}>
              {x.authority} ({x.kind}, {x.jurisdiction}): {t.due} {date(x.dueAt)}
              {x.notifiedAt
                ? ` — ${t.met} ${date(x.notifiedAt)}`
                : x.timeLeftMs !== null
                  ? x.timeLeftMs < 0
                    ? ` — ${t.overdue} ${formatDuration(-x.timeLeftMs)}`
                    : ` — ${formatDuration(x.timeLeftMs)}`
                  : ''}
            </li>
          ))}
        </ul>
      </section>
      <section aria-labelledby="notices">
        <h2 id="notices">{t.notices}</h2>
        {d.subjectNotices.length === 0 ? (
          <p>{t.noNotices}</p>
        ) : (
          <ul id="notice-progress">
            {d.subjectNotices.map((n) => (
              <li>
                <span class="mono">{n.campaignId}</span> · {date(n.requestedAt)} · {t.noticeProgress(n)}
              </li>
            ))}
          </ul>
        )}
        {can(role, 'noticeSubjects') && !byLink && !closed && formKey ? (
          <PostForm v={v} action={`/console/incidents/${d.id}/subject-notices`} submit={t.sendNotices}>
            <input type="hidden" name="idempotencyKey" value={formKey} />
            <NoticeTexts v={v} locale="zh-CN" language="中文" />
            <NoticeTexts v={v} locale="en" language="English" />
            <label for="contact-name">{t.contactName}</label>
            <input id="contact-name" name="contact.name" required maxlength={200} />
            <label for="contact-contact">{t.contactAddress}</label>
            <input id="contact-contact" name="contact.contact" required maxlength={320} />
          </PostForm>
        ) : null}
      </section>
      <section aria-labelledby="pages">
        <h2 id="pages">{t.pages}</h2>
        <DataTable
          rows={d.pages}
          rowClass="page-row"
          columns={[
            { head: t.escalation, cell: (p) => t.pageRow(p.level, p.via) },
            { head: 'user', cell: (p) => `user:${p.userId}`, class: 'mono' },
            { head: t.opened, cell: (p) => date(p.pagedAt) },
            { head: t.status, cell: (p) => p.status },
          ]}
        />
      </section>
      <section aria-labelledby="timeline">
        <h2 id="timeline">{t.timeline}</h2>
        <ol id="timeline-list">
          {d.timeline.map((e) => (
            <li>
              {date(e.at)} · <strong>{e.type}</strong> · {e.actor}
              {e.text ? ` · ${e.text}` : ''}
            </li>
          ))}
        </ol>
      </section>
    </Layout>
  );
};

export interface AuditFilters {
  actor?: string | undefined;
  action?: string | undefined;
  targetType?: string | undefined;
  targetId?: string | undefined;
}

export const AuditPage: FC<{
  v: View;
  filters: AuditFilters;
  entries: AuditRecord[];
  older: string | null;
  verification?: AuditVerification | undefined;
}> = ({ v, filters, entries, older, verification }) => {
  const t = v.t.audit;
  const date = formatDate(v.lang);
  const field = (name: keyof AuditFilters, label: string) => (
    <label>
      {label}
      <br />
      <input name={name} value={filters[name] ?? ''} maxlength={200} />
    </label>
  );
  return (
    <Layout v={v} title={t.title}>
      {verification ? (
        <section aria-labelledby="verification" id="verification-result">
          <h2 id="verification">{verification.valid ? t.valid : t.broken}</h2>
          <dl>
            <dt>{t.entries}</dt>
            <dd>{verification.entries}</dd>
            <dt>{t.head}</dt>
            <dd class="mono" id="head-hash">
              {verification.headHash}
            </dd>
            <dt>{t.anchored}</dt>
            <dd>{verification.anchoredSeq ?? '—'}</dd>
            {verification.firstBrokenSeq !== undefined ? (
              <>
                <dt>{t.firstBroken}</dt>
                <dd>
                  {verification.firstBrokenSeq}: {verification.reason}
                </dd>
              </>
            ) : null}
          </dl>
        </section>
      ) : null}
      <section>
        {can(v.user!.role, 'verifyAudit') ? (
          <form method="get" action="/console/audit/verify">
            <button class="primary" type="submit">
              {t.verify}
            </button>
          </form>
        ) : null}
        <form method="get" action="/console/audit" class="filters">
          {field('actor', t.actor)}
          {field('action', t.action)}
          {field('targetType', t.targetType)}
          {field('targetId', t.targetId)}
          <button type="submit">{t.filter}</button>
        </form>
      </section>
      <section>
        <DataTable
          rows={entries}
          empty={t.none}
          rowClass="audit-row"
          columns={[
            { head: t.seq, cell: (e) => e.seq },
            { head: t.at, cell: (e) => date(e.at) },
            { head: t.actor, cell: (e) => e.actor, class: 'mono' },
            { head: t.action, cell: (e) => e.action },
            { head: t.target, cell: (e) => `${e.targetType}:${e.targetId}`, class: 'mono' },
          ]}
        />
        {older ? (
          <p>
            <a href={older}>{t.older}</a>
          </p>
        ) : null}
      </section>
    </Layout>
  );
};

export interface BackupRow {
  id: string;
  kind: string;
  status: string;
  startedAt: Date;
  sizeBytes: number | null;
  durationMs: number | null;
  test: {
    status: string;
    finishedAt: Date | null;
    rtoMs: number | null;
    rpoMs: number | null;
    reasons: Record<string, unknown>[];
    tables: Record<string, unknown>[];
  } | null;
}

/** Backups that hold something to restore: the API's restore-test route refuses the others (409). */
const RESTORABLE = new Set(['completed', 'verified', 'restore-test-failed']);

export const BackupsPage: FC<{ v: View; rows: BackupRow[]; flash?: string; problem?: string; formKey: string }> = ({
  v,
  rows,
  flash,
  problem,
  formKey,
}) => {
  const t = v.t.backups;
  const date = formatDate(v.lang);
  const mayTest = can(v.user!.role, 'restoreTest');
  return (
    <Layout v={v} title={t.title}>
      <Flash text={flash} />
      <Problem text={problem} />
      <section>
        <DataTable
          rows={rows}
          rowClass="backup-row"
          rowId={(b) => `backup-${b.id}`}
          columns={[
            {
              head: t.started,
              cell: (b) => (
                <>
                  {date(b.startedAt)} <span class="mono">({b.kind})</span>
                </>
              ),
            },
            { head: t.status, cell: (b) => b.status },
            { head: t.size, cell: (b) => formatBytes(b.sizeBytes) },
            { head: t.duration, cell: (b) => (b.durationMs === null ? '' : formatDuration(b.durationMs)) },
            {
              head: t.test,
              cell: (b) =>
                b.test
                  ? `${b.test.status}${b.test.finishedAt ? ` · ${date(b.test.finishedAt)}` : ''}${
                      b.test.reasons.length ? ` · ${b.test.reasons.map((r) => String(r.code)).join(', ')}` : ''
                    }`
                  : v.t.today.notTested,
              class: 'restore-test',
            },
            {
              head: (
                <>
                  {t.rto} / {t.rpo}
                </>
              ),
              cell: (b) => (
                <>
                  {b.test?.rtoMs != null ? formatDuration(b.test.rtoMs) : ''}
                  {b.test?.rpoMs != null ? ` / ${formatDuration(b.test.rpoMs)}` : ''}
                </>
              ),
            },
            {
              head: OBLIGATION_TEXT[v.lang].restore.differed,
              cell: (b) => (b.test ? <RestoreTestDifferences v={v} test={b.test} /> : ''),
              class: 'restore-differed',
            },
            mayTest && {
              cell: (b) =>
                b.kind === 'data' && RESTORABLE.has(b.status) ? (
                  <form method="post" action={`/console/backups/${b.id}/restore-tests`}>
                    <Csrf v={v} />
                    <input type="hidden" name="idempotencyKey" value={formKey} />
                    <button type="submit">{t.testNow}</button>
                  </form>
                ) : null,
            },
          ]}
        />
      </section>
    </Layout>
  );
};

export const SchedulesPage: FC<{ v: View; views: ScheduleView[]; flash?: string; problem?: string }> = ({
  v,
  views,
  flash,
  problem,
}) => {
  const t = v.t.schedules;
  const date = formatDate(v.lang);
  const mayChange = can(v.user!.role, 'changeSchedule');
  const mayTrigger = can(v.user!.role, 'triggerSchedule');
  return (
    <Layout v={v} title={t.title}>
      <Flash text={flash} />
      <Problem text={problem} />
      <section>
        <DataTable
          rows={views}
          rowClass="schedule-row"
          rowId={(s) => `schedule-${s.id}`}
          columns={[
            {
              head: t.name,
              cell: (s) => (
                <>
                  <strong>{s.id}</strong>
                  <br />
                  <span class="mono">{s.spec ? ('cron' in s.spec ? s.spec.cron : s.spec.every) : '—'}</span>
                </>
              ),
            },
            {
              head: v.t.backups.status,
              cell: (s) => (s.paused ? t.paused : s.created ? t.active : '—'),
              class: 'schedule-state',
            },
            { head: t.next, cell: (s) => s.nextRuns.slice(0, 2).map((r) => <div>{date(r)}</div>) },
            {
              head: t.last,
              cell: (s) => (s.lastRun ? <RunEvidence v={v} run={s.lastRun} /> : v.t.never),
              class: 'schedule-last-run',
            },
            {
              cell: (s) => (
                <>
                  {mayChange && s.created ? (
                    <form method="post" action={`/console/schedules/${s.id}/${s.paused ? 'resume' : 'pause'}`}>
                      <Csrf v={v} />
                      <button type="submit" aria-label={`${s.paused ? t.resume : t.pause} ${s.id}`}>
                        {s.paused ? t.resume : t.pause}
                      </button>
                    </form>
                  ) : null}
                  {mayTrigger && s.created ? (
                    <form method="post" action={`/console/schedules/${s.id}/trigger`}>
                      <Csrf v={v} />
                      <button type="submit" aria-label={`${t.trigger} ${s.id}`}>
                        {t.trigger}
                      </button>
                    </form>
                  ) : null}
                </>
              ),
            },
          ]}
        />
      </section>
    </Layout>
  );
};
