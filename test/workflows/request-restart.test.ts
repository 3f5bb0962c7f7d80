import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { and, eq, like } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { notifications, requestEvents } from '../../db/schema';
import { requestWorkflowId } from '../../domain/ids';
import { requestClock } from '../../domain/request-clocks';
import { request } from '../../workflows';
import { requestStateQuery } from '../../workflows/request';
import { seedStaff } from '../helpers/incidents';
import { waitFor } from '../helpers/wait';
import { useProductionWorkers } from '../helpers/production-workers';

const workers = useProductionWorkers('request-kill');

describe('a request’s deadline across a killed worker', () => {
  it(
    'a worker SIGKILLed while the request waits, restarted before its deadline: the overdue escalation fires once',
    { timeout: 120_000 },
    async () => {
      const { database, temporal, spawnWorker } = workers;
      const db = database.db;
      const owner = await seedStaff(db, temporal.keyring, 'owner');
      const WINDOW = 24_000;
      const taskQueue = temporal.taskQueue('request-kill');
      const first = await spawnWorker(taskQueue);
      const replacement = await spawnWorker(taskQueue, { standby: true });

      const requestId = randomUUID();
      const receivedAt = Date.now();
      const handle = await temporal.client.workflow.start(request, {
        taskQueue,
        workflowId: requestWorkflowId(requestId),
        args: [
          {
            requestId,
            type: 'access',
            subjectId: randomUUID(),
            channel: 'api',
            clock: requestClock('CN', 'access', receivedAt, { windowMs: WINDOW, cnDefaultMs: WINDOW }),
            fields: [],
            purposes: [],
            verification: { method: 'other', referenceTextId: randomUUID(), by: 'test' },
            filedBy: 'test',
            linkTtlMs: 60_000,
            destruction: { approvalWindowMs: 60_000, graceMs: 1_000 },
          },
        ],
      });
      const due = receivedAt + WINDOW;
      // The 75 % reminder fires before the kill; the 90 % one and the deadline fall while a worker is gone or new.
      await waitFor(
        async () => ((await handle.query(requestStateQuery)).fired.includes('reminder-75') ? true : undefined),
        '75 %',
      );
      await new Promise((r) => setTimeout(r, Math.max(0, receivedAt + 0.85 * WINDOW - Date.now())));
      first.child.kill('SIGKILL');
      await once(first.child, 'exit');
      await new Promise((r) => setTimeout(r, 1_000));
      await replacement.go();
      expect(Date.now(), 'the new worker was up before the deadline').toBeLessThan(due);

      const overdue = await waitFor(async () => {
        const rows = await db
          .select()
          .from(notifications)
          .where(
            and(
              like(notifications.idempotencyKey, `${requestWorkflowId(requestId)}:clock-overdue:%`),
              eq(notifications.status, 'sent'),
            ),
          );
        return rows.length > 0 ? rows : undefined;
      }, 'overdue escalation');
      expect(overdue.map((m) => m.recipientRef)).toEqual([`user:${owner.userId}`]);
      expect(overdue[0]!.attempts).toBe(1);
      expect(overdue[0]!.sentAt!.getTime()).toBeGreaterThanOrEqual(due);
      // Give a duplicate a chance to appear, then count: one message per mark, one timeline event per mark.
      await new Promise((r) => setTimeout(r, 2_000));
      const clockMessages = await db
        .select()
        .from(notifications)
        .where(like(notifications.idempotencyKey, `${requestWorkflowId(requestId)}:clock-%`));
      expect(clockMessages.map((m) => m.idempotencyKey.split(':')[1]).sort()).toEqual([
        'clock-overdue',
        'clock-reminder-50',
        'clock-reminder-75',
        'clock-reminder-90',
      ]);
      const events = await db.select().from(requestEvents).where(eq(requestEvents.requestId, requestId));
      expect(events.filter((e) => e.type === 'overdue')).toHaveLength(1);
      const state = await handle.query(requestStateQuery);
      expect(state.fired).toEqual(['reminder-50', 'reminder-75', 'reminder-90', 'overdue']);
      expect(state.late).toBe(true);
      await handle.terminate('test over');
    },
  );
});
