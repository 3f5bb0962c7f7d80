import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { and, eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { storeIncidentText } from '../../activities/incident-records';
import { frozenPolicy } from '../../activities/oncall';
import { notifications } from '../../db/schema';
import { incidentWorkflowId } from '../../domain/ids';
import { DEFAULT_GRADE_THRESHOLDS } from '../../domain/regulatory-clocks';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { bundleWorkflows } from '../../runtime/worker';
import { incident } from '../../workflows';
import { ackUpdate, incidentStateQuery } from '../../workflows/incident';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { pagesOf, seedPolicy, seedStaff, user } from '../helpers/incidents';
import { connectTestTemporal, type TestTemporal } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

const keyFile = generateKeyFile();
let database: TestDatabase;
let temporal: TestTemporal;
let dir: string;
let bundlePath: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custodian-incident-kill-'));
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

describe('incident escalation across a killed worker', () => {
  it(
    'a worker SIGKILLed while the incident waits for an ack, restarted later: level 2 is paged once, on time',
    { timeout: 120_000 },
    async () => {
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
        args: [
          {
            incidentId,
            titleTextId: title.id,
            severity: 'sev1',
            category: 'availability',
            awareAt: Date.now(),
            personalData: false,
            jurisdictions: [],
            affected: { subjectIds: [] },
            policy: frozenPolicy(policy),
            cnOperator: 'other',
            gradeThresholds: DEFAULT_GRADE_THRESHOLDS,
            windows: {},
            postmortemWithinMs: 60_000,
            openedBy: 'test',
            ackLinkTtlMs: 3_600_000,
          },
        ],
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
