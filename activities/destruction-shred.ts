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

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

const committedBatch = async (tx: Db | Tx, destructionId: string, startAfter: string) => {
  const [row] = await tx.execute<{
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

/**
 * One batch in one transaction, keyed by the subject it starts after: the batch row is claimed first, then each
 * target not held (rows locked: a hold placed meanwhile waits, or wins) loses its wrapped keys (crypto-shred) and
 * its field rows; a whole-subject target becomes a tombstone. A batch an earlier attempt committed is read back.
 */
const shredBatch = async (
  d: { db: Db; keyring: Keyring },
  destructionId: string,
  startAfter: string,
  size: number,
): Promise<BatchRow | undefined> => {
  const done = await committedBatch(d.db, destructionId, startAfter);
  if (done) return done;
  const run = execution();
  try {
    return await d.db.transaction(async (tx) => {
      const targets = [
        ...(await tx.execute<{ subject_id: string; fields: string[] | null }>(sql`
          select subject_id, fields from destruction_targets
          where destruction_id = ${destructionId} and subject_id > ${startAfter}::uuid
          order by subject_id limit ${size}`)),
      ];
      if (targets.length === 0) return undefined;
      const lastSubjectId = targets.at(-1)!.subject_id;
      const claimed = await tx.execute(sql`
        insert into destruction_batches (destruction_id, start_after, last_subject_id, subjects, keys, field_rows, key_ids_sha256)
        values (${destructionId}, ${startAfter}, ${lastSubjectId}, 0, 0, 0, '') on conflict do nothing returning 1`);
      if (claimed.length === 0) throw new BatchAlreadyCommitted();
      const wholeTargets = targets.filter((t) => t.fields === null).map((t) => t.subject_id);
      const partialTargets = targets.filter((t) => t.fields !== null);
      // Whole subjects: the tombstone update re-checks hold and status under its row lock (a hold committed first
      // wins; one committed later finds the subject destroyed), so no separate locking pass is needed.
      const current = wholeTargets.length
        ? [
            ...(await tx.execute<{ id: string; external_ref: string }>(sql`
              select id, external_ref from subjects
              where id = any(${pgArray(wholeTargets)}::uuid[]) and not legal_hold and status <> 'destroyed'`)),
          ]
        : [];
      const whole = current.length
        ? [
            ...(await tx.execute<{ id: string }>(sql`
              update subjects s set status = 'destroyed', external_ref = u.ref, retention_until = null, updated_at = now()
              from unnest(${pgArray(current.map((c) => c.id))}::uuid[], ${pgArray(current.map((c) => c.external_ref))}::text[],
                ${pgArray(current.map((c) => externalRefTombstone(d.keyring, c.external_ref)))}::text[]) as u(id, old, ref)
              where s.id = u.id and s.external_ref = u.old and not s.legal_hold and s.status <> 'destroyed'
              returning s.id`)),
          ].map((r) => r.id)
        : [];
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
      const eligible = whole.length + partial.length;
      const keys = whole.length
        ? [
            ...(await tx.execute<{ subject_id: string; key_version: number }>(sql`
              delete from subject_keys where subject_id = any(${pgArray(whole)}::uuid[]) returning subject_id, key_version`)),
          ]
        : [];
      let fieldRows = 0;
      if (whole.length)
        fieldRows += (
          await tx.execute(sql`delete from subject_fields where subject_id = any(${pgArray(whole)}::uuid[])`)
        ).count;
      if (partial.length)
        fieldRows += (
          await tx.execute(sql`
            delete from subject_fields f using unnest(${pgArray(partial.map((t) => t.subject_id))}::uuid[],
              ${pgArray(partial.map((t) => t.fields!.join(',')))}::text[]) as u(id, fields)
            where f.subject_id = u.id and f.field = any(string_to_array(u.fields, ','))`)
        ).count;
      const keyIds = keys.map((k) => `${k.subject_id}:${k.key_version}`).sort();
      const row: BatchRow = {
        lastSubjectId,
        subjects: eligible,
        keys: keys.length,
        fieldRows,
        keyIdsSha256: createHash('sha256').update(keyIds.join('\n')).digest('hex'),
      };
      await tx.execute(sql`
        update destruction_batches set subjects = ${row.subjects}, keys = ${row.keys}, field_rows = ${row.fieldRows},
          key_ids_sha256 = ${row.keyIdsSha256}
        where destruction_id = ${destructionId} and start_after = ${startAfter}`);
      await appendAudit(tx, {
        actor: 'system',
        action: 'destruction.batch-shredded',
        targetType: 'destruction',
        targetId: destructionId,
        ...run,
        details: { startAfter, ...row, skipped: targets.length - eligible },
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

/** Every batch from the first, heartbeating after each; batches an earlier attempt committed are read back. */
export const shredDestruction = async (
  d: { db: Db; keyring: Keyring },
  destructionId: string,
  batchSize: number,
): Promise<ShredTotals> => {
  await recordDestructionEvent(d.db, {
    destructionId,
    step: 'destroying',
    action: 'destruction.destroying',
    actor: 'system',
    patch: { status: 'destroying' },
  });
  const totals = { subjects: 0, keys: 0, fieldRows: 0, batches: 0 };
  const digest = createHash('sha256');
  for (let startAfter = FIRST_BATCH; ;) {
    const batch = await shredBatch(d, destructionId, startAfter, batchSize);
    if (!batch) break;
    totals.subjects += batch.subjects;
    totals.keys += batch.keys;
    totals.fieldRows += batch.fieldRows;
    totals.batches += 1;
    digest.update(`${batch.keyIdsSha256}\n`);
    startAfter = batch.lastSubjectId;
    Context.current().heartbeat({ startAfter, ...totals });
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
}

/**
 * Sanitization validation over every target: no wrapped key remains (the key store returns none, so no value can be
 * decrypted), no field row of the scope remains, each whole subject is a tombstone. Held targets are reported apart.
 */
export const verifyDestruction = async (d: { db: Db }, destructionId: string): Promise<Verification> => {
  const [row] = await d.db.execute<{
    checked: number;
    held: number;
    keys_remaining: number;
    decryptable: number;
    field_rows_remaining: number;
    not_tombstoned: number;
  }>(sql`
    with t as materialized (
      select t.subject_id, t.fields, s.legal_hold, s.status, s.external_ref
      from destruction_targets t join subjects s on s.id = t.subject_id
      where t.destruction_id = ${destructionId}),
    k as (select t.subject_id, t.status from subject_keys k join t on k.subject_id = t.subject_id
      where t.fields is null and not t.legal_hold)
    select (select count(*) from t)::int as checked,
      (select count(*) from t where legal_hold and (fields is not null or status <> 'destroyed'))::int as held,
      (select count(*) from k)::int as keys_remaining,
      (select count(distinct subject_id) from k where status = 'destroyed')::int as decryptable,
      (select count(*) from subject_fields f join t on f.subject_id = t.subject_id
        where not t.legal_hold and (t.fields is null or f.field = any(t.fields)))::int as field_rows_remaining,
      (select count(*) from t where fields is null and not legal_hold
        and (status <> 'destroyed' or external_ref not like ${`${TOMBSTONE_PREFIX}%`}))::int as not_tombstoned`);
  const v = {
    checked: row!.checked,
    heldAtShred: row!.held,
    keysRemaining: row!.keys_remaining,
    fieldRowsRemaining: row!.field_rows_remaining,
    decryptable: row!.decryptable,
    notTombstoned: row!.not_tombstoned,
  };
  return {
    method:
      'every target: key-store lookup (no wrapped data key left, so no value decrypts), field rows of the scope counted, tombstone checked',
    passed: v.keysRemaining === 0 && v.fieldRowsRemaining === 0 && v.decryptable === 0 && v.notTombstoned === 0,
    ...v,
  };
};
