import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { eq, inArray, sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { listAudit } from '../../activities/audit';
import { decryptField } from '../../activities/crypto/field-cipher';
import { loadKekVersions } from '../../activities/key-rotation-keks';
import { dataKeys } from '../../activities/keys';
import { kekVersions, keyRotationBatches, keyRotations, subjectFields, subjectKeys, subjects } from '../../db/schema';
import { keyRotationWorkflowId } from '../../domain/ids';
import { parseKeyring } from '../../runtime/keyring';
import { keyRotation } from '../../workflows';
import { insertSubjects } from '../helpers/campaign-subjects';
import { waitFor } from '../helpers/wait';
import { useProductionWorkers } from '../helpers/production-workers';

const workers = useProductionWorkers('key-rotation-kill');

const SUBJECTS = 10_000;
const DESTROYED = 20;

describe('key rotation across a killed worker', () => {
  it(
    '10,000 data keys: each re-wrapped exactly once, every value still decrypts, the old KEK retired only at the end',
    { timeout: 300_000 },
    async () => {
      const { database, temporal, keyFile, spawnWorker } = workers;
      const db = database.db;
      const seeded = await insertSubjects(db, temporal.keyring, SUBJECTS + DESTROYED);
      // Destroyed subjects have no keys (crypto-shredded): the rotation never sees them.
      const destroyed = seeded.ids.slice(SUBJECTS);
      await db.delete(subjectKeys).where(inArray(subjectKeys.subjectId, destroyed));
      await db.update(subjects).set({ status: 'destroyed' }).where(inArray(subjects.id, destroyed));

      const taskQueue = temporal.taskQueue('key-rotation-kill');
      const first = await spawnWorker(taskQueue);
      const replacement = await spawnWorker(taskQueue, { standby: true });
      const rotationId = randomUUID();
      const handle = await temporal.client.workflow.start(keyRotation, {
        taskQueue,
        workflowId: keyRotationWorkflowId(rotationId),
        // 100 batches of 100 per pass, 15 per run: the rotation continues as new across the kill.
        args: [{ rotationId, requestedBy: 'test', batchSize: 100, batchesPerRun: 15, heartbeatTimeout: '3 seconds' }],
      });

      const batchesSoFar = async () =>
        (await db.select().from(keyRotationBatches).where(eq(keyRotationBatches.rotationId, rotationId))).length;
      await waitFor(async () => ((await batchesSoFar()) >= 20 ? true : undefined), '20 batches re-wrapped');
      first.child.kill('SIGKILL');
      await once(first.child, 'exit');
      const atKill = await batchesSoFar();
      const [rotationAtKill] = await db.select().from(keyRotations).where(eq(keyRotations.id, rotationId));
      expect(rotationAtKill!.status).toBe('rewrapping');
      expect(atKill, 'killed midway').toBeLessThan(100);
      // Mid-way, the old KEK is still active and the new one current for new keys.
      const versionsAtKill = await db.select().from(kekVersions);
      expect(versionsAtKill.map((v) => [v.version, v.source, v.status]).sort()).toEqual([
        [1, 'keyring', 'active'],
        [2, 'rotation', 'active'],
      ]);
      await replacement.go();

      const evidence = await handle.result();
      expect(evidence).toMatchObject({
        rotationId,
        fromVersions: [1],
        toVersion: 2,
        retiredVersions: [1],
        keysRewrapped: SUBJECTS,
        keysVerified: SUBJECTS,
        passes: 1,
      });

      // Exactly once: one batch row per start, their re-wraps sum to the key count, and every key is under v2.
      const batches = await db.select().from(keyRotationBatches).where(eq(keyRotationBatches.rotationId, rotationId));
      // 100 full batches, then an empty one that finds the end.
      expect(batches).toHaveLength(101);
      expect(batches.reduce((n, b) => n + b.rewrapped, 0)).toBe(SUBJECTS);
      expect(batches.reduce((n, b) => n + b.skipped, 0)).toBe(0);
      const perVersion = await db
        .select({ kek: subjectKeys.kekVersion, n: sql<number>`count(*)::int` })
        .from(subjectKeys)
        .groupBy(subjectKeys.kekVersion);
      expect(perVersion).toEqual([{ kek: 2, n: SUBJECTS }]);

      // Retired only at the end: after the last batch was committed.
      const [v1] = await db.select().from(kekVersions).where(eq(kekVersions.version, 1));
      expect(v1!.status).toBe('retired');
      const lastBatch = Math.max(...batches.map((b) => b.createdAt.getTime()));
      expect(v1!.retiredAt!.getTime()).toBeGreaterThanOrEqual(lastBatch);

      // Every value decrypts with a keyring that starts from the key file alone (the new KEK read from the database).
      const keyring = parseKeyring(keyFile, 'verify');
      expect(await loadKekVersions(db, keyring)).toBe(2);
      const live = seeded.ids.slice(0, SUBJECTS);
      const keys = await dataKeys({ db, keyring }).loadDataKeys(live);
      expect(keys.size).toBe(SUBJECTS);
      const emails = await db.select().from(subjectFields).where(eq(subjectFields.field, 'email'));
      let decrypted = 0;
      for (const row of emails) {
        const key = keys.get(row.subjectId);
        if (!key) continue;
        const value = decryptField(
          key.dek,
          { subjectId: row.subjectId, field: 'email', keyVersion: key.keyVersion },
          row.ciphertext!,
        );
        expect(value).toMatch(/^campaign\..+@example\.com$/);
        decrypted++;
      }
      expect(decrypted).toBe(SUBJECTS);

      const audited = await listAudit(db, { targetType: 'key-rotation', targetId: rotationId, limit: 10 });
      expect(audited.map((a) => a.action).sort()).toEqual(['key-rotation.completed', 'key-rotation.started']);
      const completed = audited.find((a) => a.action === 'key-rotation.completed')!;
      expect(completed.details).toMatchObject({ retiredVersions: [1], keysRewrapped: SUBJECTS, toVersion: 2 });
    },
  );
});
