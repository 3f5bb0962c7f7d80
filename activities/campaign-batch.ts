import { Context } from '@temporalio/activity';
import { sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { zeroCampaignCounts, type CampaignCounts, type CampaignFilter } from '../domain/campaign';
import { campaignWorkflowId } from '../domain/ids';
import { appendAudit } from './audit';
import { pgArray, rawSql } from './subject-writer';

/** What a campaign did for one subject. `error` is a failure type, never a message. */
export interface TargetOutcome {
  subjectId: string;
  outcome: 'notified' | 'consent-requested' | 'failed';
  consentId?: string;
  error?: string;
}

export interface CampaignBatchOutcome {
  counts: CampaignCounts;
  /** The last subject of the batch: where the next page starts. */
  end: string;
  subjects: number;
}

class BatchAlreadyCommitted extends Error {}

/** The subjects an incident affected: those it lists, and those of the import it names. */
const incidentScope = (q: ReturnType<typeof rawSql>, incidentId: string) => q`
  and (id in (select subject_id from incident_affected_subjects where incident_id = ${incidentId}::uuid)
    or import_id = (select affected->>'importId' from incidents where id = ${incidentId}::uuid))`;

/**
 * The next `limit` subject IDs in scope after `after` ('' for the first page), in ID order: a keyset page
 * on the primary key, so pages never overlap and a page is found again from where it starts.
 */
export const subjectPage = async (db: Db, filter: CampaignFilter, after: string, limit: number): Promise<string[]> => {
  const q = rawSql(db);
  const rows = await q<{ id: string }[]>`
    select id from subjects
    where status <> 'destroyed'
      ${after ? q`and id > ${after}::uuid` : q``}
      ${filter.jurisdiction ? q`and jurisdiction = ${filter.jurisdiction}` : q``}
      ${filter.importId ? q`and import_id = ${filter.importId}` : q``}
      ${filter.incidentId ? incidentScope(q, filter.incidentId) : q``}
    order by id
    limit ${limit}`;
  return rows.map((r) => r.id);
};

/** How many subjects are in scope now. */
export const subjectsInScope = async (db: Db, filter: CampaignFilter): Promise<number> => {
  const q = rawSql(db);
  const [row] = await q<{ n: number }[]>`
    select count(*)::int as n from subjects
    where status <> 'destroyed'
      ${filter.jurisdiction ? q`and jurisdiction = ${filter.jurisdiction}` : q``}
      ${filter.importId ? q`and import_id = ${filter.importId}` : q``}
      ${filter.incidentId ? incidentScope(q, filter.incidentId) : q``}`;
  return row!.n;
};

type BatchRow = {
  end_subject_id: string;
  subjects: number;
  notified: number;
  consents_requested: number;
  failed: number;
};

const recorded = (row: BatchRow): CampaignBatchOutcome => ({
  counts: {
    targeted: row.notified + row.consents_requested + row.failed,
    notified: row.notified,
    consentsRequested: row.consents_requested,
    failed: row.failed,
  },
  end: row.end_subject_id,
  subjects: row.subjects,
});

/** The batch starting after `startAfter`, if an earlier attempt committed it. */
export const committedCampaignBatch = async (
  db: Db,
  campaignId: string,
  startAfter: string,
): Promise<CampaignBatchOutcome | undefined> => {
  const [row] = await rawSql(db)<BatchRow[]>`
    select end_subject_id, subjects, notified, consents_requested, failed from campaign_batches
    where campaign_id = ${campaignId} and start_after = ${startAfter}`;
  return row && recorded(row);
};

const countOf = (outcomes: readonly { outcome: string }[]): CampaignCounts => {
  const counts = zeroCampaignCounts();
  for (const { outcome } of outcomes) {
    counts.targeted += 1;
    if (outcome === 'notified') counts.notified += 1;
    else if (outcome === 'consent-requested') counts.consentsRequested += 1;
    else counts.failed += 1;
  }
  return counts;
};

/**
 * Commits a batch in one transaction: the batch row (keyed by campaign and where the page starts), a
 * target row per subject, the campaign's counters and the audit entry. A batch an earlier attempt
 * committed is not written again; its recorded counts are returned instead.
 */
export const commitCampaignBatch = async (
  db: Db,
  campaignId: string,
  startAfter: string,
  targets: readonly TargetOutcome[],
): Promise<CampaignBatchOutcome> => {
  const end = targets.at(-1)!.subjectId;
  const execution = Context.current().info.workflowExecution;
  try {
    return await db.transaction(async (tx) => {
      // Claimed first: a concurrent attempt at the same batch waits here, then finds it committed.
      const claimed = await tx.execute(sql`
        insert into campaign_batches (campaign_id, start_after, end_subject_id, subjects, notified, consents_requested, failed)
        values (${campaignId}, ${startAfter}, ${end}, ${targets.length}, 0, 0, 0)
        on conflict do nothing returning 1`);
      if (claimed.length === 0) throw new BatchAlreadyCommitted();
      const written = await tx.execute<{ outcome: string }>(sql`
        insert into campaign_targets (campaign_id, subject_id, outcome, consent_id, error)
        select ${campaignId}, * from unnest(${pgArray(targets.map((t) => t.subjectId))}::uuid[],
          ${pgArray(targets.map((t) => t.outcome))}::text[], ${pgArray(targets.map((t) => t.consentId ?? null))}::uuid[],
          ${pgArray(targets.map((t) => t.error ?? null))}::text[])
        on conflict do nothing
        returning outcome`);
      const counts = countOf([...written]);
      await tx.execute(sql`
        update campaign_batches set notified = ${counts.notified}, consents_requested = ${counts.consentsRequested},
          failed = ${counts.failed}
        where campaign_id = ${campaignId} and start_after = ${startAfter}`);
      await tx.execute(sql`
        update campaigns set targeted = targeted + ${counts.targeted}, notified = notified + ${counts.notified},
          consents_requested = consents_requested + ${counts.consentsRequested}, failed = failed + ${counts.failed},
          batches = batches + 1
        where id = ${campaignId}`);
      await appendAudit(tx, {
        actor: 'system',
        action: 'campaign.batch-committed',
        targetType: 'campaign',
        targetId: campaignId,
        workflowId: execution?.workflowId,
        runId: execution?.runId,
        details: { startAfter, end, subjects: targets.length, ...counts },
        idempotencyKey: `${campaignWorkflowId(campaignId)}:batch:${startAfter || 'first'}`,
      });
      return { counts, end, subjects: targets.length };
    });
  } catch (err) {
    if (!(err instanceof BatchAlreadyCommitted)) throw err;
    const done = await committedCampaignBatch(db, campaignId, startAfter);
    if (!done)
      throw new Error(`batch after ${startAfter || 'the start'} of campaign ${campaignId} vanished`, { cause: err });
    return done;
  }
};
