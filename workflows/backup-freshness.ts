import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { assessFreshness, type BackupFreshnessInput, type BackupFreshnessResult } from '../domain/backup-reviews';
import { openIncidentFrom } from './system-incident';

export const io = {
  startToCloseTimeout: '1 minute',
  // raiseAlert's refusals (activities/alerts.ts ALERT_NON_RETRYABLE, which a workflow cannot import).
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: ['InvalidInput', 'AlertRejected'] },
} satisfies ActivityOptions;

const { findNewestVerifiedBackup, raiseAlert, recordBackupFreshness } = proxyActivities<Activities>(io);

const seconds = (ms: number) => Math.round(ms / 1000);

/**
 * The freshness alarm (`backup-freshness-{id}`, hourly): alerts when the newest backup whose restore test passed is
 * older than `thresholdMs`, or when there is none; records the verdict either way. The first stale check of an
 * episode also opens a sev3 backup incident (when an escalation policy exists); later ones page again only.
 */
export async function backupFreshness(input: BackupFreshnessInput): Promise<BackupFreshnessResult> {
  const { newest, checkedAt, alreadyAlerted } = await findNewestVerifiedBackup(input.thresholdMs);
  const { fresh, ageMs } = assessFreshness(newest, checkedAt, input.thresholdMs);
  let alertId: string | null = null;
  let incidentId: string | null = null;
  if (!fresh) {
    const alert = await raiseAlert({
      kind: 'backup-stale',
      targetType: 'backup-freshness',
      targetId: input.checkId,
      reason: newest
        ? `the newest verified backup is ${seconds(ageMs!)} s old (threshold ${seconds(input.thresholdMs)} s)`
        : 'there is no verified backup',
      details: { newestVerifiedBackupId: newest?.backupId ?? null, ageMs, thresholdMs: input.thresholdMs },
    });
    alertId = alert.alertId;
    if (!alreadyAlerted)
      incidentId = await openIncidentFrom({
        kind: 'backup-stale',
        targetType: 'backup',
        targetId: newest?.backupId ?? 'none',
        severity: 'sev3',
        category: 'backup',
        reason: newest ? `newest verified backup ${seconds(ageMs!)} s old` : 'no verified backup',
      });
  }
  const result: BackupFreshnessResult = {
    checkId: input.checkId,
    fresh,
    thresholdMs: input.thresholdMs,
    checkedAt,
    newestVerifiedBackupId: newest?.backupId ?? null,
    snapshotAt: newest?.snapshotAt ?? null,
    ageMs,
    alertId,
    incidentId,
  };
  await recordBackupFreshness(result);
  return result;
}
