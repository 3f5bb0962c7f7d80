import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { and, count, eq, inArray, sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import {
  auditLog,
  destructionBatches,
  destructionCertificates,
  destructions,
  subjectFields,
  subjectKeys,
  subjects,
} from '../../db/schema';
import { pgArray } from '../../activities/subject-writer';
import { destructionWorkflowId } from '../../domain/ids';
import { destruction } from '../../workflows';
import { approvalUpdate } from '../../workflows/destruction';
import { seedSubjects } from '../helpers/backups';
import { waitFor } from '../helpers/wait';
import { useProductionWorkers } from '../helpers/production-workers';

const SUBJECTS = 10_000;
const BATCH = 200;
const workers = useProductionWorkers('destruction-kill');

const approver = (n: number) => ({ userId: randomUUID(), actor: `user:approver-${n}`, role: 'approver' });

describe('destruction across a killed worker', () => {
  it(
    'a worker SIGKILLed in the middle of shredding 10,000 subjects: the restart completes, every count exact, certificate correct',
    { timeout: 300_000 },
    async () => {
      const { database, temporal, spawnWorker } = workers;
      const { keyring } = temporal;
      const db = database.db;
      const seeded = await seedSubjects(database, keyring, SUBJECTS);
      const taskQueue = temporal.taskQueue('destruction-kill');
      const first = await spawnWorker(taskQueue);
      const replacement = await spawnWorker(taskQueue, { standby: true });

      const destructionId = randomUUID();
      const handle = await temporal.client.workflow.start(destruction, {
        taskQueue,
        workflowId: destructionWorkflowId(destructionId),
        args: [
          {
            destructionId,
            scope: { kind: 'subjects', subjectIds: seeded.ids },
            reason: 'retention over',
            requestedBy: 'user:requester',
            approvalWindowMs: 120_000,
            graceMs: 1000,
            batchSize: BATCH,
          },
        ],
      });
      for (const n of [1, 2])
        await handle.executeUpdate(approvalUpdate, { args: [approver(n), { decision: 'approve', comment: 'ok' }] });

      const batchesAtKill = await waitFor(async () => {
        const [row] = await db
          .select({ n: count() })
          .from(destructionBatches)
          .where(eq(destructionBatches.destructionId, destructionId));
        return row!.n >= 5 ? row!.n : undefined;
      }, 'five batches shredded');
      first.child.kill('SIGKILL');
      await once(first.child, 'exit');
      const [midway] = await db
        .select({ n: count() })
        .from(destructionBatches)
        .where(eq(destructionBatches.destructionId, destructionId));
      expect(midway!.n, 'killed in the middle').toBeLessThan(SUBJECTS / BATCH);
      expect(batchesAtKill).toBeGreaterThanOrEqual(5);
      await replacement.go();

      const outcome = await handle.result();
      expect(outcome).toMatchObject({ status: 'completed', subjectsDestroyed: SUBJECTS });

      const [row] = await db.select().from(destructions).where(eq(destructions.id, destructionId));
      expect(row).toMatchObject({
        status: 'completed',
        targeted: SUBJECTS,
        subjectsDestroyed: SUBJECTS,
        keysDestroyed: SUBJECTS,
        fieldRowsDeleted: 4 * SUBJECTS,
      });
      const batches = await db
        .select()
        .from(destructionBatches)
        .where(eq(destructionBatches.destructionId, destructionId));
      expect(batches).toHaveLength(SUBJECTS / BATCH);
      expect(batches.reduce((n, b) => n + b.subjects, 0)).toBe(SUBJECTS);
      const audited = await db
        .select({ n: count() })
        .from(auditLog)
        .where(and(eq(auditLog.targetId, destructionId), eq(auditLog.action, 'destruction.batch-shredded')));
      expect(audited[0]!.n).toBe(SUBJECTS / BATCH);

      const ids = pgArray(seeded.ids);
      const [left] = await db.execute<{ keys: number; fields: number; alive: number }>(sql`
        select (select count(*) from ${subjectKeys} where subject_id = any(${ids}::uuid[]))::int as keys,
          (select count(*) from ${subjectFields} where subject_id = any(${ids}::uuid[]))::int as fields,
          (select count(*) from ${subjects} where id = any(${ids}::uuid[]) and status <> 'destroyed')::int as alive`);
      expect(left).toEqual({ keys: 0, fields: 0, alive: 0 });

      const [cert] = await db
        .select()
        .from(destructionCertificates)
        .where(inArray(destructionCertificates.destructionId, [destructionId]));
      expect(cert!.certificate).toMatchObject({
        scope: { matched: SUBJECTS, targeted: SUBJECTS, excludedUnderLegalHold: 0 },
        sanitization: {
          subjectsDestroyed: SUBJECTS,
          keysDestroyed: SUBJECTS,
          fieldRowsDeleted: 4 * SUBJECTS,
          batches: SUBJECTS / BATCH,
        },
        verification: { result: 'pass', checked: SUBJECTS, keysRemaining: 0, fieldRowsRemaining: 0, decryptable: 0 },
      });
      const certified = await db
        .select({ n: count() })
        .from(auditLog)
        .where(and(eq(auditLog.targetId, destructionId), eq(auditLog.action, 'destruction.certificate-issued')));
      expect(certified[0]!.n).toBe(1);
    },
  );
});
