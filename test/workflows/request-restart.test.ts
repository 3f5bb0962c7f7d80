import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { and, eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { notifications, requestEvents } from '../../db/schema';
import { requestWorkflowId } from '../../domain/ids';
import { requestClock } from '../../domain/request-clocks';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { bundleWorkflows } from '../../runtime/worker';
import { request } from '../../workflows';
import { requestStateQuery } from '../../workflows/request';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { seedStaff } from '../helpers/incidents';
import { connectTestTemporal, type TestTemporal } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

const keyFile = generateKeyFile();
let database: TestDatabase;
let temporal: TestTemporal;
let dir: string;
let bundlePath: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custodian-request-kill-'));
  const [db, t, bundle] = await Promise.all([
    createTestDatabase(),
    connectTestTemporal(parseKeyring(keyFile, 'test')),
    bundleWorkflows(),
  ]);
  [database, temporal] = [db, t];
  bundlePath = join(dir, 'workflow-bundle.js');
  await writeFile(bundlePath, bundle.code);
  await writeFile(`${bundlePath}.map`, bundle.sourceMap);
}, 180_000);
afterAll(async () => {
  const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
  for (const child of running) {
    child.stdin?.end();
    child.kill('SIGTERM');
  }
  // A worker drains before it exits; one that does not within 20 s is killed.
  await Promise.all(
    running.map((c) =>
      Promise.race([once(c, 'exit'), new Promise((r) => setTimeout(r, 20_000)).then(() => c.kill('SIGKILL'))]),
    ),
  );
  await temporal?.close();
  await database?.drop();
  await rm(dir, { recursive: true, force: true });
});

/**
 * A worker built as production builds it, in a child process (test/helpers/production-worker.ts), to SIGKILL.
 * `standby`: started and connected but not polling until `go()`, so a restart takes a moment, not a process start.
 */
const spawnWorker = async (taskQueue: string, o: { standby?: boolean } = {}) => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('../helpers/production-worker.ts', import.meta.url))],
    {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        TASK_QUEUE: taskQueue,
        DATABASE_URL: database.url,
        STAGING_DIR: dir,
        KEY_FILE_JSON: JSON.stringify(keyFile),
        WORKFLOW_BUNDLE: bundlePath,
        STANDBY: o.standby ? '1' : '0',
      },
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const until = (line: string) => waitFor(async () => (output.includes(line) ? true : undefined), `worker ${line}`);
  await until(o.standby ? 'standby' : 'ready');
  return {
    child,
    go: async () => {
      child.stdin!.write('go\n');
      await until('ready');
    },
  };
};

describe('a request’s deadline across a killed worker', () => {
  it(
    'a worker SIGKILLed while the request waits, restarted before its deadline: the overdue escalation fires once',
    { timeout: 120_000 },
    async () => {
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
