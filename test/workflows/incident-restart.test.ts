import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { and, eq, like } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { storeIncidentText } from '../../activities/incident-records';
import { notifications } from '../../db/schema';
import { incidentWorkflowId } from '../../domain/ids';
import { incident } from '../../workflows';
import { ackUpdate, incidentStateQuery } from '../../workflows/incident';
import { pagesOf, plainIncidentInput, seedPolicy, seedStaff, user } from '../helpers/incidents';
import { waitFor } from '../helpers/wait';
import { useProductionWorkers } from '../helpers/production-workers';

const workers = useProductionWorkers('incident-kill');

describe('incident escalation across a killed worker', () => {
  it(
    'a worker SIGKILLed while the incident waits for an ack, restarted later: level 2 is paged once, on time',
    { timeout: 120_000 },
    async () => {
      const { database, temporal, spawnWorker } = workers;
      const db = database.db;
      const keyring = temporal.keyring;
      const [a, b, responder] = await Promise.all([
        seedStaff(db, keyring, 'responder'),
        seedStaff(db, keyring, 'responder'),
        seedStaff(db, keyring, 'responder'),
      ]);
      await seedStaff(db, keyring, 'owner');
      const WAIT = 20_000;
      const policy = await seedPolicy(db, [
        { targets: [user(a.userId)], waitSeconds: WAIT / 1000 },
        { targets: [user(b.userId)], waitSeconds: 60 },
      ]);
      const taskQueue = temporal.taskQueue('incident-kill');
      const first = await spawnWorker(taskQueue);
      const replacement = await spawnWorker(taskQueue, { standby: true });

      const incidentId = randomUUID();
      const title = await storeIncidentText(db, { incidentId, kind: 'title', body: 'kill', createdBy: 'test' });
      const handle = await temporal.client.workflow.start(incident, {
        taskQueue,
        workflowId: incidentWorkflowId(incidentId),
        args: [plainIncidentInput(incidentId, title.id, policy)],
      });
      const [level1] = await waitFor(async () => {
        const pages = await pagesOf(db, incidentId);
        return pages[0]?.status === 'sent' ? pages : undefined;
      }, 'level 1 paged');
      const due = level1!.pagedAt.getTime() + WAIT;

      // Killed while the incident waits for an ack, a few seconds before level 1 times out: the dead worker's
      // sticky queue was polled moments ago, so the server first offers the timer's task to it.
      await new Promise((r) => setTimeout(r, due - 6_000 - Date.now()));
      first.child.kill('SIGKILL');
      await once(first.child, 'exit');
      await new Promise((r) => setTimeout(r, 2_000));
      expect(await pagesOf(db, incidentId)).toHaveLength(1);
      await replacement.go();
      const restartedAt = Date.now();
      expect(restartedAt, 'the new worker was up before level 1 timed out').toBeLessThan(due);

      const pages = await waitFor(async () => {
        const all = await pagesOf(db, incidentId);
        return all.some((p) => p.level === 2 && p.status === 'sent') ? all : undefined;
      }, 'level 2 paged');
      const level2 = pages.find((p) => p.level === 2)!;
      expect(level2.userId).toBe(b.userId);
      expect(level2.pagedAt.getTime()).toBeGreaterThanOrEqual(due);
      // On time although the worker holding the workflow is gone: the sticky-queue timeout (2 s, the SDK's default
      // of 10 s made it 11 s late) plus the new worker's replay and the send.
      expect(level2.sentAt!.getTime() - due).toBeLessThan(4_000);

      // Once: one page row per level, one outbox message each, level 1 never re-sent.
      expect(pages.map((p) => p.level)).toEqual([1, 2]);
      const outbox = await db
        .select()
        .from(notifications)
        .where(
          and(
            like(notifications.idempotencyKey, `${incidentWorkflowId(incidentId)}:%`),
            eq(notifications.template, 'incident-page'),
          ),
        );
      expect(outbox.map((m) => [m.idempotencyKey.split(':')[1], m.status, m.attempts]).sort()).toEqual([
        ['page-r1-c1-l1', 'sent', 1],
        ['page-r1-c1-l2', 'sent', 1],
      ]);
      const state = await handle.query(incidentStateQuery);
      expect(state.escalation).toMatchObject({ cycle: 1, level: 2 });
      await handle.executeUpdate(ackUpdate, {
        args: [{ actor: `user:${responder.userId}`, userId: responder.userId, role: 'responder', method: 'api' }],
      });
      await handle.terminate('test over');
    },
  );
});
