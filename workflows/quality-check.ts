import { continueAsNew, proxyActivities, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { QualityCheckInput, QualityCheckResult } from '../domain/quality';
import { openIncidentFrom } from './system-incident';

export const io = {
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: ['InvalidInput', 'AlertRejected'] },
} satisfies ActivityOptions;

const { startQualityCheck, finishQualityCheck, raiseAlert, recordQualityEscalation, notifyQualityOwners } =
  proxyActivities<Activities>(io);
const { checkQualityPage } = proxyActivities<Activities>({
  ...io,
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
});

const DEFAULT_PAGE_SIZE = 500;
const DEFAULT_PAGES_PER_RUN = 200;

/**
 * The data-quality check (`quality-check-{id}`, weekly): every subject that is not destroyed, page by page (each
 * page's counts committed once, keyed by where it starts; continue-as-new after `pagesPerRun`), then duplicates and
 * consistency over the registry, a stored report of counts, and, when a threshold is broken, a notice to every
 * owner, an operator alert and a sev4 data-quality incident.
 */
export async function qualityCheck(input: QualityCheckInput): Promise<QualityCheckResult> {
  // The first run opens the report; later runs (continue-as-new) carry the thresholds it returned.
  const thresholds = input.cursor === undefined ? await startQualityCheck(input) : input.thresholds!;
  const pageSize = input.pageSize ?? DEFAULT_PAGE_SIZE;
  const pagesPerRun = input.pagesPerRun ?? DEFAULT_PAGES_PER_RUN;
  let cursor: string | null = input.cursor ?? '';
  for (let pages = 0; cursor !== null; pages++) {
    if (pages >= pagesPerRun || workflowInfo().continueAsNewSuggested)
      return await continueAsNew<typeof qualityCheck>({ ...input, thresholds, cursor });
    ({ nextAfter: cursor } = await checkQualityPage({
      checkId: input.checkId,
      startAfter: cursor,
      pageSize,
      thresholds,
    }));
  }
  const report = await finishQualityCheck({ checkId: input.checkId });
  let alertId: string | null = null;
  let incidentId: string | null = null;
  if (report.breaches.length > 0) {
    const checks = [...new Set(report.breaches.map((b) => (b.field ? `${b.check}:${b.field}` : b.check)))];
    const reason = `${report.breaches.length} data-quality threshold(s) breached: ${checks.join(', ')}`.slice(0, 500);
    await notifyQualityOwners({ checkId: input.checkId });
    ({ alertId } = await raiseAlert({
      kind: 'quality-threshold-breached',
      targetType: 'quality-report',
      targetId: input.checkId,
      reason,
      details: { subjectsChecked: report.subjectsChecked, breaches: report.breaches.length },
    }));
    incidentId = await openIncidentFrom({
      kind: 'quality-threshold-breached',
      targetType: 'quality-report',
      targetId: input.checkId,
      severity: 'sev4',
      category: 'data-quality',
      reason: reason.slice(0, 200),
    });
    await recordQualityEscalation({ checkId: input.checkId, alertId, incidentId });
  }
  return {
    checkId: input.checkId,
    subjectsChecked: report.subjectsChecked,
    breaches: report.breaches.length,
    alertId,
    incidentId,
  };
}
