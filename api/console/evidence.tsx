import type { FC } from 'hono/jsx';
import type { ScheduleRun } from '../../activities/schedules';
import type { RestoreTestReason, RestoreTestTable } from '../../domain/backup';
import { formatDate } from './format';
import type { View } from './layout';
import { OBLIGATION_TEXT } from './obligation-text';

/** How many of a run result's facts the page lists: results carry IDs, counts and verdicts, a handful each. */
const RESULT_FACTS = 12;

/** A run's result as `name: value` lines, nested objects by dotted name, arrays by their length. */
export const resultFacts = (result: unknown, prefix = ''): [string, string][] => {
  if (result === null || typeof result !== 'object') return prefix ? [[prefix, String(result)]] : [];
  const facts: [string, string][] = [];
  for (const [key, value] of Object.entries(result as Record<string, unknown>)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (Array.isArray(value)) facts.push([name, `[${value.length}]`]);
    else if (value !== null && typeof value === 'object') facts.push(...resultFacts(value, name));
    else if (value !== undefined) facts.push([name, String(value)]);
  }
  return facts;
};

/**
 * The evidence a schedule's last run left: its status and times, the process's own workflow (the launcher's
 * result names it) and that process's result, or the failure's type.
 */
export const RunEvidence: FC<{ v: View; run: ScheduleRun }> = ({ v, run }) => {
  const t = OBLIGATION_TEXT[v.lang].run;
  const date = formatDate(v.lang);
  const launched = (run.result ?? null) as { workflowId?: unknown; result?: unknown } | null;
  const facts = resultFacts(launched?.result ?? null).slice(0, RESULT_FACTS);
  return (
    <div class="run-evidence">
      <div>
        {run.status} · {date(run.startedAt)}
        {run.closedAt ? ` · ${t.closed} ${date(run.closedAt)}` : ` · ${t.running}`}
      </div>
      <div>
        {t.workflow}:{' '}
        <span class="mono">{typeof launched?.workflowId === 'string' ? launched.workflowId : run.workflowId}</span>
      </div>
      {run.failureType ? (
        <div class="late">
          {t.failure}: <span class="mono">{run.failureType}</span>
        </div>
      ) : run.status === 'COMPLETED' ? (
        facts.length ? (
          <ul class="run-result" aria-label={t.result}>
            {facts.map(([name, value]) => (
              <li>
                <span class="mono">{name}</span>: {value}
              </li>
            ))}
          </ul>
        ) : (
          <div>{t.noResult}</div>
        )
      ) : null}
    </div>
  );
};

export interface RestoreTestComparison {
  status: string;
  reasons: Record<string, unknown>[];
  tables: Record<string, unknown>[];
}

const short = (hash: unknown) => String(hash ?? '').slice(0, 12);

/** One reason a restore test failed, in words: where (frame or table, stage) and what was expected and found. */
const reasonText = (v: View, r: RestoreTestReason): string => {
  const t = OBLIGATION_TEXT[v.lang].restore;
  const where = [
    'frame' in r ? t.frame(r.frame) : 'table' in r && r.table ? r.table : '',
    'stage' in r ? (t.stage[r.stage] ?? r.stage) : '',
  ]
    .filter(Boolean)
    .join(' ');
  const what =
    r.code === 'table-rows-mismatch'
      ? t.rows(r.expected, r.actual)
      : r.code === 'table-hash-mismatch' || r.code === 'ciphertext-hash-mismatch'
        ? t.hash(short(r.expected), short(r.actual))
        : 'expected' in r
          ? t.expectedActual(String(r.expected), String(r.actual))
          : 'expectedBytes' in r
            ? t.expectedActual(`${r.expectedBytes} B`, `${r.actualBytes} B`)
            : 'sealedAs' in r
              ? t.frame(r.sealedAs)
              : 'message' in r
                ? r.message
                : '';
  return [r.code, where, what].filter(Boolean).join(' · ');
};

/**
 * What a restore test's comparison found: how many tables matched the manifest and each reason it failed (the
 * frame or table and the expected and found figures; hashes shortened). Never a value from the data.
 */
export const RestoreTestDifferences: FC<{ v: View; test: RestoreTestComparison }> = ({ v, test }) => {
  const t = OBLIGATION_TEXT[v.lang].restore;
  if (test.status === 'running') return <span>{t.running}</span>;
  const tables = test.tables as unknown as RestoreTestTable[];
  const matched = tables.filter((x) => x.match).length;
  const mismatched = tables.filter((x) => !x.match);
  const reasons = test.reasons as unknown as RestoreTestReason[];
  return (
    <div class="restore-differences">
      {tables.length ? <div>{t.tablesMatched(matched, tables.length)}</div> : null}
      {reasons.length === 0 && mismatched.length === 0 ? (
        <div>{t.nothing}</div>
      ) : (
        <ul>
          {reasons.map((r) => (
            <li>{reasonText(v, r)}</li>
          ))}
          {mismatched
            .filter((x) => !reasons.some((r) => 'table' in r && r.table === x.table))
            .map((x) => (
              <li>
                {x.table} · {t.rows(x.expectedRows, x.restoredRows)}
              </li>
            ))}
        </ul>
      )}
    </div>
  );
};
