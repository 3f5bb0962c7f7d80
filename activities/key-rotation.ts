import { ApplicationFailure, Context } from '@temporalio/activity';
import { and, eq, ne, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { kekVersions, keyRotationBatches, keyRotations, subjectKeys } from '../db/schema';
import { batchKey, keyCursor, parseKeyCursor, type KeyRotationEvidence } from '../domain/key-rotation';
import { rootKekVersion, type Keyring } from '../runtime/keyring';
import { appendAudit } from './audit';
import { unwrapDataKey, wrapDataKey } from './crypto/key-wrap';
import { loadKekVersions, newKekVersion } from './key-rotation-keks';

export interface KeyRotationDeps {
  db: Db;
  keyring: Keyring;
  clock: () => Date;
}

const execution = () => {
  const e = Context.current().info.workflowExecution;
  return { workflowId: e?.workflowId ?? 'none', runId: e?.runId ?? null };
};

/** Serialises rotations (begin and complete) across workers. */
const ROTATION_LOCK = sql`select pg_advisory_xact_lock(hashtext('custodian:key-rotation'))`;

type KeyRow = Pick<typeof subjectKeys.$inferSelect, 'subjectId' | 'keyVersion' | 'kekVersion' | 'wrappedKey'>;

export const KEY_ROTATION_NON_RETRYABLE = ['RotationInProgress', 'RotationNotFound'];

/**
 * Key rotation's steps. The new KEK version is made once per rotation (a row keyed by the rotation); each re-wrap
 * batch is keyed by the pass and the data key it starts after and commits its row with its re-wrapped keys in one
 * transaction, so a retried or replayed batch is read back and no key is re-wrapped twice. Key bytes never leave.
 */
export const keyRotationActivities = (d: KeyRotationDeps) => {
  const keysAfter = async (cursor: string, limit: number): Promise<KeyRow[]> => {
    const after = parseKeyCursor(cursor);
    return d.db
      .select({
        subjectId: subjectKeys.subjectId,
        keyVersion: subjectKeys.keyVersion,
        kekVersion: subjectKeys.kekVersion,
        wrappedKey: subjectKeys.wrappedKey,
      })
      .from(subjectKeys)
      .where(
        after
          ? sql`(${subjectKeys.subjectId}, ${subjectKeys.keyVersion}) > (${after.subjectId}::uuid, ${after.keyVersion})`
          : undefined,
      )
      .orderBy(subjectKeys.subjectId, subjectKeys.keyVersion)
      .limit(limit);
  };

  const nextOf = (rows: KeyRow[], limit: number) =>
    rows.length === limit ? keyCursor(rows[rows.length - 1]!.subjectId, rows[rows.length - 1]!.keyVersion) : null;

  /** The keyring with `toVersion` in it (another worker may have made it). */
  const ensureVersion = async (toVersion: number) => {
    if (!d.keyring.keks.has(toVersion)) await loadKekVersions(d.db, d.keyring);
    if (!d.keyring.keks.has(toVersion)) throw new Error(`KEK version ${toVersion} is not stored`);
  };

  return {
    /**
     * Makes the rotation's KEK version (once: a retry reads it back), wrapped under the configured KEK, and makes it
     * current for new data keys. Refuses while another rotation is unfinished.
     */
    async beginKeyRotation(input: {
      rotationId: string;
      requestedBy: string;
    }): Promise<{ fromVersions: number[]; toVersion: number; startedAt: string }> {
      const { workflowId, runId } = execution();
      const begun = await d.db.transaction(async (tx) => {
        await tx.execute(ROTATION_LOCK);
        const [existing] = await tx.select().from(keyRotations).where(eq(keyRotations.id, input.rotationId));
        if (existing) return existing;
        const [other] = await tx
          .select({ id: keyRotations.id })
          .from(keyRotations)
          .where(eq(keyRotations.status, 'rewrapping'));
        if (other)
          throw ApplicationFailure.nonRetryable(`key rotation ${other.id} is not finished`, 'RotationInProgress');
        const stored = await tx.select().from(kekVersions);
        const inUse = await tx.selectDistinct({ v: subjectKeys.kekVersion }).from(subjectKeys);
        const root = rootKekVersion(d.keyring);
        const fromVersions = [...new Set([...inUse.map((r) => r.v), d.keyring.currentKekVersion])].sort(
          (a, b) => a - b,
        );
        const toVersion = Math.max(0, ...d.keyring.keks.keys(), ...stored.map((r) => r.version), ...fromVersions) + 1;
        // The configured versions in use get a row, so their retirement is recorded like the made ones'.
        const known = new Set(stored.map((r) => r.version));
        const configured = fromVersions.filter((v) => !known.has(v));
        if (configured.length)
          await tx
            .insert(kekVersions)
            .values(configured.map((version) => ({ version, source: 'keyring' as const, status: 'active' as const })));
        const { wrappedKey } = newKekVersion(d.keyring, toVersion, root);
        await tx.insert(kekVersions).values({
          version: toVersion,
          source: 'rotation',
          wrappedKey,
          wrappedBy: root,
          status: 'active',
          rotationId: input.rotationId,
        });
        const [created] = await tx
          .insert(keyRotations)
          .values({
            id: input.rotationId,
            workflowId,
            status: 'rewrapping',
            requestedBy: input.requestedBy,
            fromVersions,
            toVersion,
            startedAt: d.clock(),
          })
          .returning();
        await appendAudit(tx, {
          actor: input.requestedBy,
          action: 'key-rotation.started',
          targetType: 'key-rotation',
          targetId: input.rotationId,
          workflowId,
          runId,
          details: { fromVersions, toVersion, wrappedBy: root },
          idempotencyKey: `${workflowId}:started`,
        });
        return created!;
      });
      await loadKekVersions(d.db, d.keyring);
      return { fromVersions: begun.fromVersions, toVersion: begun.toVersion, startedAt: begun.startedAt.toISOString() };
    },

    /**
     * Re-wraps one batch of data keys under `toVersion`: keys already under it are skipped. The batch row and the
     * re-wrapped keys commit together; a batch already committed is read back.
     */
    async rewrapKeyBatch(input: {
      rotationId: string;
      toVersion: number;
      pass: number;
      cursor: string;
      batchSize: number;
    }): Promise<{ nextAfter: string | null; rewrapped: number; skipped: number }> {
      const startAfter = batchKey(input.pass, input.cursor);
      const committed = async () =>
        (
          await d.db
            .select({
              nextAfter: keyRotationBatches.nextAfter,
              rewrapped: keyRotationBatches.rewrapped,
              skipped: keyRotationBatches.skipped,
            })
            .from(keyRotationBatches)
            .where(
              and(eq(keyRotationBatches.rotationId, input.rotationId), eq(keyRotationBatches.startAfter, startAfter)),
            )
        )[0];
      const done = await committed();
      if (done) return done;
      await ensureVersion(input.toVersion);
      const rows = await keysAfter(input.cursor, input.batchSize);
      Context.current().heartbeat({ cursor: input.cursor });
      const target = { ...d.keyring, currentKekVersion: input.toVersion };
      const rewrapped = rows
        .filter((r) => r.kekVersion !== input.toVersion)
        .map((r) => ({ ...r, ...wrapDataKey(target, r, unwrapDataKey(d.keyring, r)), oldKekVersion: r.kekVersion }));
      const nextAfter = nextOf(rows, input.batchSize);
      await d.db.transaction(async (tx) => {
        const [claimed] = await tx
          .insert(keyRotationBatches)
          .values({
            rotationId: input.rotationId,
            startAfter,
            nextAfter,
            rewrapped: 0,
            skipped: rows.length - rewrapped.length,
          })
          .onConflictDoNothing()
          .returning({ rotationId: keyRotationBatches.rotationId });
        if (!claimed || rewrapped.length === 0) return;
        const values = sql.join(
          rewrapped.map(
            (k) => sql`(${k.subjectId}::uuid, ${k.keyVersion}::int, ${k.oldKekVersion}::int, ${k.wrappedKey}::bytea)`,
          ),
          sql`, `,
        );
        // Only a key still under the KEK it was read under: a key destroyed or re-wrapped meanwhile is left alone.
        const updated = await tx.execute<{ subject_id: string }>(sql`
          update subject_keys k set kek_version = ${input.toVersion}, wrapped_key = v.wrapped
          from (values ${values}) as v(subject_id, key_version, old_kek, wrapped)
          where k.subject_id = v.subject_id and k.key_version = v.key_version and k.kek_version = v.old_kek
          returning k.subject_id`);
        await tx
          .update(keyRotationBatches)
          .set({ rewrapped: updated.length, skipped: rows.length - updated.length })
          .where(
            and(eq(keyRotationBatches.rotationId, input.rotationId), eq(keyRotationBatches.startAfter, startAfter)),
          );
      });
      return (await committed())!;
    },

    /** Checks one batch: every key under `toVersion` unwraps; keys under another version are counted. Read-only. */
    async verifyKeyBatch(input: {
      toVersion: number;
      cursor: string;
      batchSize: number;
    }): Promise<{ nextAfter: string | null; verified: number; notRewrapped: number }> {
      await ensureVersion(input.toVersion);
      const rows = await keysAfter(input.cursor, input.batchSize);
      Context.current().heartbeat({ cursor: input.cursor });
      let verified = 0;
      let notRewrapped = 0;
      for (const row of rows) {
        if (row.kekVersion !== input.toVersion) notRewrapped++;
        else {
          // Throws UNWRAP_FAILED (retried, then the rotation fails before anything is retired).
          unwrapDataKey(d.keyring, row);
          verified++;
        }
      }
      return { nextAfter: nextOf(rows, input.batchSize), verified, notRewrapped };
    },

    /**
     * Retires every other active KEK version, once no data key is under one (checked under the rotation lock), and
     * records the evidence. `remaining` > 0: keys appeared under an older version; nothing is retired, run a pass.
     */
    async completeKeyRotation(input: {
      rotationId: string;
      verified: number;
      passes: number;
    }): Promise<{ remaining: number; evidence: KeyRotationEvidence | null }> {
      const { workflowId, runId } = execution();
      return d.db.transaction(async (tx) => {
        await tx.execute(ROTATION_LOCK);
        const [rotation] = await tx.select().from(keyRotations).where(eq(keyRotations.id, input.rotationId));
        if (!rotation) throw ApplicationFailure.nonRetryable(`no key rotation ${input.rotationId}`, 'RotationNotFound');
        const [{ remaining } = { remaining: 0 }] = await tx
          .select({ remaining: sql<number>`count(*)::int` })
          .from(subjectKeys)
          .where(ne(subjectKeys.kekVersion, rotation.toVersion));
        if (rotation.status === 'rewrapping' && remaining > 0) return { remaining, evidence: null };
        const now = d.clock();
        if (rotation.status === 'rewrapping') {
          const retired = await tx
            .update(kekVersions)
            .set({ status: 'retired', retiredAt: now })
            .where(and(eq(kekVersions.status, 'active'), ne(kekVersions.version, rotation.toVersion)))
            .returning({ version: kekVersions.version });
          const [{ rewrapped } = { rewrapped: 0 }] = await tx
            .select({ rewrapped: sql<number>`coalesce(sum(${keyRotationBatches.rewrapped}), 0)::int` })
            .from(keyRotationBatches)
            .where(eq(keyRotationBatches.rotationId, input.rotationId));
          await tx
            .update(keyRotations)
            .set({ status: 'completed', keysRewrapped: rewrapped, keysVerified: input.verified, completedAt: now })
            .where(eq(keyRotations.id, input.rotationId));
          const retiredVersions = retired.map((r) => r.version).sort((a, b) => a - b);
          await appendAudit(tx, {
            actor: 'system',
            action: 'key-rotation.completed',
            targetType: 'key-rotation',
            targetId: input.rotationId,
            workflowId,
            runId,
            details: {
              fromVersions: rotation.fromVersions,
              toVersion: rotation.toVersion,
              retiredVersions,
              keysRewrapped: rewrapped,
              keysVerified: input.verified,
              passes: input.passes,
              durationMs: now.getTime() - rotation.startedAt.getTime(),
            },
            idempotencyKey: `${workflowId}:completed`,
          });
        }
        const [final] = await tx.select().from(keyRotations).where(eq(keyRotations.id, input.rotationId));
        const retiredRows = await tx
          .select({ version: kekVersions.version })
          .from(kekVersions)
          .where(and(eq(kekVersions.status, 'retired'), eq(kekVersions.retiredAt, final!.completedAt!)));
        return {
          remaining: 0,
          evidence: {
            rotationId: final!.id,
            fromVersions: final!.fromVersions,
            toVersion: final!.toVersion,
            retiredVersions: retiredRows.map((r) => r.version).sort((a, b) => a - b),
            keysRewrapped: final!.keysRewrapped,
            keysVerified: final!.keysVerified,
            passes: input.passes,
            startedAt: final!.startedAt.toISOString(),
            completedAt: final!.completedAt!.toISOString(),
            durationMs: final!.completedAt!.getTime() - final!.startedAt.getTime(),
          },
        };
      });
    },
  };
};
