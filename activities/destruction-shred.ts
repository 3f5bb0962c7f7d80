import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { destructionWorkflowId } from '../domain/ids';
import type { Keyring } from '../runtime/keyring';
import { appendAudit } from './audit';
import { execution, recordDestructionEvent } from './destruction-records';
import { externalRefTombstone, TOMBSTONE_PREFIX } from './destruction-tombstone';
import { pgArray } from './subject-writer';

/** Where the first batch starts: before every UUID. */
export const FIRST_BATCH = '00000000-0000-0000-0000-000000000000';
export interface BatchCounts {
  subjects: number;
  keys: number;
  fieldRows: number;
}

interface BatchRow extends BatchCounts {
  lastSubjectId: string;
  keyIdsSha256: string;
}

const committedBatch = async (db: Db, destructionId: string, startAfter: string): Promise<BatchRow | undefined> => {
  const [row] = await db.execute<{
    last_subject_id: string;
    subjects: number;
    keys: number;
    field_rows: number;
    key_ids_sha256: string;
  }>(sql`
    select last_subject_id, subjects, keys, field_rows, key_ids_sha256 from destruction_batches
    where destruction_id = ${destructionId} and start_after = ${startAfter}`);
  return row
    ? {
        lastSubjectId: row.last_subject_id,
        subjects: row.subjects,
        keys: row.keys,
        fieldRows: row.field_rows,
        keyIdsSha256: row.key_ids_sha256,
      }
    : undefined;
};

class BatchAlreadyCommitted extends Error {}

/** A batch: the targets after `startAfter` up to and including `lastSubjectId`, in subject ID order. */
export interface PlannedBatch {
  startAfter: string;
  lastSubjectId: string;
}

/**
 * Every batch of a request, from its targets (fixed when it opened): batch n ends at target n·size, the boundaries a
 * pass from the first batch would find, so an earlier attempt's batch rows keep their keys and batches can run in
 * any order.
 */
export const planBatches = async (db: Db, destructionId: string, size: number): Promise<PlannedBatch[]> => {
  const ends = [
    ...(await db.execute<{ subject_id: string }>(sql`
      select subject_id from (
        select subject_id, row_number() over (order by subject_id) as n, count(*) over () as total
        from destruction_targets where destruction_id = ${destructionId}) t
      where n % ${size}::int = 0 or n = total order by subject_id`)),
  ].map((r) => r.subject_id);
  return ends.map((lastSubjectId, i) => ({ startAfter: i === 0 ? FIRST_BATCH : ends[i - 1]!, lastSubjectId }));
};

/** The SHA-256 of the sorted `subject:version` lines of the keys `k` returned, computed where they were deleted. */
const KEY_IDS_SHA256 = sql.raw(`encode(sha256(convert_to(coalesce((select string_agg(id, E'\\n' order by id collate "C")
  from (select subject_id || ':' || key_version as id from k) ids), ''), 'UTF8')), 'hex')`);

/**
 * One batch in one transaction, keyed by the subject it starts after: the batch row is claimed, the targets read with
 * their subjects, each whole-subject target not held becomes a tombstone, then one statement deletes the wrapped keys
 * (crypto-shred) and field rows of those and records the batch's counts and key digest. A batch an earlier attempt
 * committed is read back.
 */
const shredBatch = async (
  d: { db: Db; keyring: Keyring },
  destructionId: string,
  batch: PlannedBatch,
): Promise<BatchRow> => {
  const { startAfter, lastSubjectId } = batch;
  const run = execution();
  try {
    return await d.db.transaction(async (tx) => {
      const claimed = await tx.execute(sql`
        insert into destruction_batches (destruction_id, start_after, last_subject_id, subjects, keys, field_rows, key_ids_sha256)
        values (${destructionId}, ${startAfter}, ${lastSubjectId}, 0, 0, 0, '') on conflict do nothing returning 1`);
      if (claimed.length === 0) throw new BatchAlreadyCommitted();
      const targets = [
        ...(await tx.execute<{
          subject_id: string;
          fields: string[] | null;
          external_ref: string | null;
          eligible: boolean | null;
        }>(sql`
          select t.subject_id, t.fields, s.external_ref, not s.legal_hold and s.status <> 'destroyed' as eligible
          from destruction_targets t left join subjects s on s.id = t.subject_id
          where t.destruction_id = ${destructionId} and t.subject_id > ${startAfter}::uuid
            and t.subject_id <= ${lastSubjectId}::uuid`)),
      ];
      const current = targets.filter((t) => t.eligible && t.fields === null);
      // Field scope: the subject rows are locked (a hold placed meanwhile waits, or wins), then the named rows go.
      const partialTargets = targets.filter((t) => t.eligible && t.fields !== null);
      const partialIds = new Set(
        partialTargets.length
          ? [
              ...(await tx.execute<{ id: string }>(sql`
                select id from subjects where id = any(${pgArray(partialTargets.map((t) => t.subject_id))}::uuid[])
                  and not legal_hold and status <> 'destroyed' for update`)),
            ].map((r) => r.id)
          : [],
      );
      const partial = partialTargets.filter((t) => partialIds.has(t.subject_id));
      const partialRows = partial.length
        ? (
            await tx.execute(sql`
              delete from subject_fields f using unnest(${pgArray(partial.map((t) => t.subject_id))}::uuid[],
                ${pgArray(partial.map((t) => t.fields!.join(',')))}::text[]) as u(id, fields)
              where f.subject_id = u.id and f.field = any(string_to_array(u.fields, ','))`)
          ).count
        : 0;
      // The tombstone update re-checks hold and status under its row lock: a hold committed first wins; one
      // committed later finds the subject destroyed. Only the subjects it tombstoned lose their keys and rows.
      const whole = current.length
        ? pgArray(
            [
              ...(await tx.execute<{ id: string }>(sql`
                update subjects s set status = 'destroyed', external_ref = u.ref, retention_until = null, updated_at = now()
                from unnest(${pgArray(current.map((c) => c.subject_id))}::uuid[], ${pgArray(current.map((c) => c.external_ref))}::text[],
                  ${pgArray(current.map((c) => externalRefTombstone(d.keyring, c.external_ref!)))}::text[]) as u(id, old, ref)
                where s.id = u.id and s.external_ref = u.old and not s.legal_hold and s.status <> 'destroyed'
                returning s.id`)),
            ].map((r) => r.id),
          )
        : '{}';
      const [counts] = await tx.execute<{ subjects: number; keys: number; field_rows: number; key_ids_sha256: string }>(
        sql`
        with k as (delete from subject_keys where subject_id = any(${whole}::uuid[]) returning subject_id, key_version),
        f as (delete from subject_fields where subject_id = any(${whole}::uuid[]) returning 1)
        update destruction_batches set subjects = cardinality(${whole}::uuid[]) + ${partial.length}::int,
          keys = (select count(*) from k), field_rows = (select count(*) from f) + ${partialRows}::int,
          key_ids_sha256 = ${KEY_IDS_SHA256}
        where destruction_id = ${destructionId} and start_after = ${startAfter}
        returning subjects, keys, field_rows, key_ids_sha256`,
      );
      const row: BatchRow = {
        lastSubjectId,
        subjects: counts!.subjects,
        keys: counts!.keys,
        fieldRows: counts!.field_rows,
        keyIdsSha256: counts!.key_ids_sha256,
      };
      await appendAudit(tx, {
        actor: 'system',
        action: 'destruction.batch-shredded',
        targetType: 'destruction',
        targetId: destructionId,
        ...run,
        details: { startAfter, ...row, skipped: targets.length - row.subjects },
        idempotencyKey: `${destructionWorkflowId(destructionId)}:batch:${startAfter}`,
      });
      return row;
    });
  } catch (err) {
    if (!(err instanceof BatchAlreadyCommitted)) throw err;
    const again = await committedBatch(d.db, destructionId, startAfter);
    if (!again) throw new Error(`batch after ${startAfter} of destruction ${destructionId} vanished`, { cause: err });
    return again;
  }
};

export interface ShredTotals extends BatchCounts {
  batches: number;
  /** SHA-256 over the batches' key-ID digests in order: which keys went, without listing them. */
  keyIdsSha256: string;
}

/**
 * Runs `work` over `items`, at most `concurrency` at a time, results in input order; after a failure nothing new
 * starts, and the first error is thrown once the running ones have settled.
 */
const inPool = async <T, R>(items: readonly T[], concurrency: number, work: (item: T) => Promise<R>) => {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async () => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        results[i] = await work(items[i]!);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
  if (failure) throw failure.error;
  return results;
};

/** Batches in flight at once: each is its own transaction on its own connection; their audit appends queue. */
export const SHRED_CONCURRENCY = 2;

/**
 * Every batch, `concurrency` at a time, heartbeating after each; batches an earlier attempt committed are read back.
 * The totals and the key digest follow the batches' order, whatever order they ran in.
 */
export const shredDestruction = async (
  d: { db: Db; keyring: Keyring },
  destructionId: string,
  batchSize: number,
  concurrency = SHRED_CONCURRENCY,
): Promise<ShredTotals> => {
  await recordDestructionEvent(d.db, {
    destructionId,
    step: 'destroying',
    action: 'destruction.destroying',
    actor: 'system',
    patch: { status: 'destroying' },
  });
  const plan = await planBatches(d.db, destructionId, batchSize);
  let done = 0;
  const batches = await inPool(plan, concurrency, async (b) => {
    const row = await shredBatch(d, destructionId, b);
    Context.current().heartbeat({ batches: ++done, of: plan.length });
    return row;
  });
  const totals = { subjects: 0, keys: 0, fieldRows: 0, batches: batches.length };
  const digest = createHash('sha256');
  for (const batch of batches) {
    totals.subjects += batch.subjects;
    totals.keys += batch.keys;
    totals.fieldRows += batch.fieldRows;
    digest.update(`${batch.keyIdsSha256}\n`);
  }
  const keyIdsSha256 = digest.digest('hex');
  await recordDestructionEvent(d.db, {
    destructionId,
    step: 'verifying',
    action: 'destruction.verifying',
    actor: 'system',
    details: { ...totals, keyIdsSha256 },
    patch: {
      status: 'verifying',
      subjectsDestroyed: totals.subjects,
      keysDestroyed: totals.keys,
      fieldRowsDeleted: totals.fieldRows,
    },
  });
  return { ...totals, keyIdsSha256 };
};

export interface Verification {
  method: string;
  passed: boolean;
  /** Targets checked; those a legal hold kept are counted apart and not destroyed. */
  checked: number;
  heldAtShred: number;
  keysRemaining: number;
  fieldRowsRemaining: number;
  /** Destroyed subjects whose data key can still be loaded (and so values decrypted). */
  decryptable: number;
  notTombstoned: number;
  /** Whole-subject targets that are tombstones, and field-scope targets not held: the certificate's outcome. */
  subjectsDestroyed: number;
  subjectsWithFieldsDeleted: number;
}

type RangeCounts = {
  checked: number;
  held: number;
  keys_remaining: number;
  decryptable: number;
  field_rows_remaining: number;
  not_tombstoned: number;
  whole: number;
  partial: number;
};

/** The verification's counts over the targets after `from` (from the first when absent) up to `to` (to the last). */
const verifyRange = async (db: Db, destructionId: string, from?: string, to?: string): Promise<RangeCounts> => {
  const [row] = await db.execute<RangeCounts>(sql`
    with t as materialized (
      select t.subject_id, t.fields, s.legal_hold, s.status, s.external_ref
      from destruction_targets t join subjects s on s.id = t.subject_id
      where t.destruction_id = ${destructionId}
        ${from ? sql`and t.subject_id > ${from}::uuid` : sql``} ${to ? sql`and t.subject_id <= ${to}::uuid` : sql``}),
    k as (select t.subject_id, t.status from subject_keys k join t on k.subject_id = t.subject_id
      where t.fields is null and not t.legal_hold)
    select (select count(*) from t)::int as checked,
      (select count(*) from t where legal_hold and (fields is not null or status <> 'destroyed'))::int as held,
      (select count(*) from k)::int as keys_remaining,
      (select count(distinct subject_id) from k where status = 'destroyed')::int as decryptable,
      (select count(*) from subject_fields f join t on f.subject_id = t.subject_id
        where not t.legal_hold and (t.fields is null or f.field = any(t.fields)))::int as field_rows_remaining,
      (select count(*) from t where fields is null and not legal_hold
        and (status <> 'destroyed' or external_ref not like ${`${TOMBSTONE_PREFIX}%`}))::int as not_tombstoned,
      (select count(*) from t where fields is null and status = 'destroyed')::int as whole,
      (select count(*) from t where fields is not null and not legal_hold)::int as partial`);
  return row!;
};

/**
 * Sanitization validation over every target: no wrapped key remains (the key store returns none, so no value can be
 * decrypted), no field row of the scope remains, each whole subject is a tombstone. Held targets are reported apart.
 * The targets are checked in `lanes` contiguous ranges at once, split at batch ends; the first range is open below
 * and the last open above, so together they cover every target whatever the split.
 */
export const verifyDestruction = async (
  d: { db: Db },
  destructionId: string,
  lanes = SHRED_CONCURRENCY,
): Promise<Verification> => {
  const ends = [
    ...(await d.db.execute<{ last_subject_id: string }>(sql`
      select last_subject_id from destruction_batches where destruction_id = ${destructionId} order by last_subject_id`)),
  ].map((r) => r.last_subject_id);
  const parts = Math.max(1, Math.min(lanes, ends.length));
  const splits = Array.from({ length: parts - 1 }, (_, i) => ends[Math.floor(((i + 1) * ends.length) / parts) - 1]!);
  const ranges = await Promise.all(
    [undefined, ...splits].map((from, i) => verifyRange(d.db, destructionId, from, splits[i])),
  );
  const sum = (key: keyof RangeCounts) => ranges.reduce((n, r) => n + r[key], 0);
  const v = {
    checked: sum('checked'),
    heldAtShred: sum('held'),
    keysRemaining: sum('keys_remaining'),
    fieldRowsRemaining: sum('field_rows_remaining'),
    decryptable: sum('decryptable'),
    notTombstoned: sum('not_tombstoned'),
  };
  const outcome = { subjectsDestroyed: sum('whole'), subjectsWithFieldsDeleted: sum('partial') };
  return {
    method:
      'every target: key-store lookup (no wrapped data key left, so no value decrypts), field rows of the scope counted, tombstone checked',
    passed: v.keysRemaining === 0 && v.fieldRowsRemaining === 0 && v.decryptable === 0 && v.notTombstoned === 0,
    ...v,
    ...outcome,
  };
};
