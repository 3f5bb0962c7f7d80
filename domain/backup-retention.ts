import { z } from 'zod';

/**
 * Grandfather-father-son retention of data backups, as a pure selection: keep the newest backup of each of the
 * `keepDaily` most recent days, `keepWeekly` ISO weeks and `keepMonthly` months (UTC) that hold a backup, and always
 * the newest backup whose restore test passed. Everything else goes.
 */
export const RetentionPolicy = z
  .object({
    keepDaily: z.number().int().min(0).max(10_000),
    keepWeekly: z.number().int().min(0).max(10_000),
    keepMonthly: z.number().int().min(0).max(10_000),
  })
  .strict();
export type RetentionPolicy = z.infer<typeof RetentionPolicy>;

/** What the selection needs of a backup: its ID, when its snapshot was taken, and its latest restore test. */
export interface RetainedCandidate {
  id: string;
  /** Epoch milliseconds of the snapshot (the data's time, which the buckets go by). */
  takenAt: number;
  /** The latest restore test's verdict; null while untested. */
  restoreTest: 'pass' | 'fail' | null;
}

export type RetentionReason = 'pinned' | 'daily' | 'weekly' | 'monthly';

export interface RetentionSelection {
  /** Kept backups, newest first, each with the rules that keep it. */
  keep: { id: string; reasons: RetentionReason[] }[];
  /** Backups to delete, newest first. */
  remove: string[];
  /** The newest backup whose restore test passed, kept whatever the policy says. */
  pinned: string | null;
}

const pad = (n: number) => String(n).padStart(2, '0');

const dayKey = (t: number) => new Date(t).toISOString().slice(0, 10);
const monthKey = (t: number) => new Date(t).toISOString().slice(0, 7);

/** ISO 8601 week (Monday first; week 1 holds the year's first Thursday), as `YYYY-Www` of its week-year. */
export const isoWeekKey = (t: number): string => {
  const d = new Date(t);
  const day = d.getUTCDay() || 7;
  const thursday = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 4 - day);
  const year = new Date(thursday).getUTCFullYear();
  const week = Math.floor((thursday - Date.UTC(year, 0, 1)) / (7 * 86_400_000)) + 1;
  return `${year}-W${pad(week)}`;
};

const PERIODS = [
  ['daily', 'keepDaily', dayKey],
  ['weekly', 'keepWeekly', isoWeekKey],
  ['monthly', 'keepMonthly', monthKey],
] as const;

/** Newest first; equal times by ID, so the selection does not depend on the input's order. */
const newestFirst = (a: RetainedCandidate, b: RetainedCandidate) =>
  b.takenAt - a.takenAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

/**
 * The GFS selection. A backup whose latest restore test failed fills no slot (a verified or untested one of the
 * same period is kept in its place) and so is deleted; the newest verified backup is pinned. Applying the
 * selection to what it keeps removes nothing more.
 */
export const selectRetention = (backups: readonly RetainedCandidate[], policy: RetentionPolicy): RetentionSelection => {
  const sorted = [...backups].sort(newestFirst);
  const reasons = new Map<string, RetentionReason[]>();
  const keepFor = (id: string, reason: RetentionReason) => reasons.set(id, [...(reasons.get(id) ?? []), reason]);
  const pinned = sorted.find((b) => b.restoreTest === 'pass')?.id ?? null;
  if (pinned) keepFor(pinned, 'pinned');
  const eligible = sorted.filter((b) => b.restoreTest !== 'fail');
  for (const [reason, limit, bucketOf] of PERIODS) {
    const buckets = new Set<string>();
    for (const backup of eligible) {
      if (buckets.size >= policy[limit]) break;
      const bucket = bucketOf(backup.takenAt);
      if (buckets.has(bucket)) continue;
      buckets.add(bucket);
      keepFor(backup.id, reason);
    }
  }
  return {
    keep: sorted.filter((b) => reasons.has(b.id)).map((b) => ({ id: b.id, reasons: reasons.get(b.id)! })),
    remove: sorted.filter((b) => !reasons.has(b.id)).map((b) => b.id),
    pinned,
  };
};

/** The retention workflow's input (`backup-retention-{id}`): the policy and who asked. */
export interface BackupRetentionInput extends RetentionPolicy {
  retentionId: string;
  requestedBy: string;
}

/** Why a planned deletion did not happen: gone already, the newest verified one by now, or a restore test is reading it. */
export type DeletionSkipped = 'already-deleted' | 'pinned' | 'restore-test-running' | 'not-found';

export interface BackupRetentionResult {
  retentionId: string;
  policy: RetentionPolicy;
  pinned: string | null;
  kept: number;
  /** Data backups outside every GFS slot, and keyring backups past their retention, deleted by this run. */
  deleted: string[];
  skipped: { backupId: string; reason: DeletionSkipped }[];
}
