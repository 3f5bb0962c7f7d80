/**
 * The scheduled checks on backups besides retention: the freshness alarm (`backup-freshness-{id}`, hourly) and the
 * restore drill (`restore-drill-{id}`, weekly). Inputs and results carry IDs, counts, times and durations only.
 */

export interface BackupFreshnessInput {
  checkId: string;
  requestedBy: string;
  /** The alarm fires when the newest verified backup's snapshot is older than this (production 26 h; tests seconds). */
  thresholdMs: number;
}

/** The newest data backup whose latest restore test passed, as the check found it. */
export interface NewestVerifiedBackup {
  backupId: string;
  /** When its snapshot was taken (ISO): the data's age counts from here. */
  snapshotAt: string;
}

export interface BackupFreshnessResult {
  checkId: string;
  fresh: boolean;
  thresholdMs: number;
  checkedAt: string;
  newestVerifiedBackupId: string | null;
  snapshotAt: string | null;
  /** The newest verified backup's age at `checkedAt`; null when there is none. */
  ageMs: number | null;
  /** The alert raised when not fresh. */
  alertId: string | null;
  /** The incident the first stale check of an episode opened (null otherwise, or without an escalation policy). */
  incidentId?: string | null;
}

/** Fresh when a verified backup exists and is no older than the threshold. */
export const assessFreshness = (
  newest: NewestVerifiedBackup | null,
  checkedAt: string,
  thresholdMs: number,
): { fresh: boolean; ageMs: number | null } => {
  if (!newest) return { fresh: false, ageMs: null };
  const ageMs = Date.parse(checkedAt) - Date.parse(newest.snapshotAt);
  return { fresh: ageMs <= thresholdMs, ageMs };
};

export interface RestoreDrillInput {
  drillId: string;
  requestedBy: string;
  /** Picks the backup; default a random one, recorded in the result so the choice can be replayed. */
  seed?: number;
  /** Passed to the restore test (how long its activities may go without a heartbeat). */
  heartbeatTimeout?: string;
}

export interface RestoreDrillResult {
  drillId: string;
  seed: number;
  /** How many backups the drill chose from. */
  candidates: number;
  backupId: string | null;
  restoreTestId: string | null;
  /** The restore test's verdict, or `no-verified-backup` when there was nothing to drill. */
  status: 'pass' | 'fail' | 'no-verified-backup';
}

/** The drill's choice: candidates in a fixed order (oldest first), indexed by the seed. */
export const pickDrillBackup = (candidates: readonly string[], seed: number): string | undefined =>
  candidates.length ? candidates[Math.abs(Math.trunc(seed)) % candidates.length] : undefined;
