import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { BackupRetentionInput, BackupRetentionResult } from '../domain/backup-retention';

export const io = {
  startToCloseTimeout: '5 minutes',
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: ['InvalidInput'] },
} satisfies ActivityOptions;

const { planBackupRetention, backupDeletionBlocker, deleteBackup } = proxyActivities<Activities>(io);

/**
 * Daily retention (`backup-retention-{id}`): GFS over the data backups (the newest verified one is pinned) and the
 * keyring backups past their retention; each planned deletion is re-checked, then done and audited. A second run
 * finds nothing more to delete.
 */
export async function backupRetention(input: BackupRetentionInput): Promise<BackupRetentionResult> {
  const policy = { keepDaily: input.keepDaily, keepWeekly: input.keepWeekly, keepMonthly: input.keepMonthly };
  const plan = await planBackupRetention(policy);
  const result: BackupRetentionResult = {
    retentionId: input.retentionId,
    policy,
    pinned: plan.pinned,
    kept: plan.keep.length,
    deleted: [],
    skipped: [],
  };
  const planned = [
    ...plan.remove.map((backupId) => ({ backupId, reason: 'retention' as const })),
    ...plan.expiredKeyring.map((backupId) => ({ backupId, reason: 'keyring-retention' as const })),
  ];
  for (const target of planned) {
    const blocker = await backupDeletionBlocker(target);
    const outcome = blocker ? { deleted: false } : await deleteBackup(target);
    if (outcome.deleted) result.deleted.push(target.backupId);
    else result.skipped.push({ backupId: target.backupId, reason: blocker ?? 'already-deleted' });
  }
  return result;
}
