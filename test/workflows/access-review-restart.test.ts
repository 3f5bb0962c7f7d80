import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { and, eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { accessGrants, accessReviews, auditLog, notifications } from '../../db/schema';
import { accessReviewWorkflowId } from '../../domain/ids';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { bundleWorkflows } from '../../runtime/worker';
import { accessReview } from '../../workflows';
import { accessDecisionUpdate } from '../../workflows/access-review';
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
  dir = await mkdtemp(join(tmpdir(), 'custodian-access-review-kill-'));
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

describe('access review across a killed worker', () => {
  it(
    'a worker SIGKILLed mid-review, replaced: every reviewer asked once, the deadline revokes each unkept grant once',
    { timeout: 120_000 },
    async () => {
      const db = database.db;
      const keyring = temporal.keyring;
      const [reviewer1, reviewer2] = await Promise.all([
        seedStaff(db, keyring, 'approver'),
        seedStaff(db, keyring, 'approver'),
      ]);
      const grants = [reviewer1, reviewer1, reviewer2].map((r) => ({
        id: randomUUID(),
        userId: randomUUID(),
        capability: 'reveal' as const,
        classification: 'sensitive' as const,
        expiresAt: new Date(Date.now() + 3600_000),
        reviewerId: r.userId,
        createdBy: 'test',
      }));
      await db.insert(accessGrants).values(grants);
      const taskQueue = temporal.taskQueue('access-review-kill');
      const first = await spawnWorker(taskQueue);
      const replacement = await spawnWorker(taskQueue, { standby: true });

      const reviewId = randomUUID();
      const workflowId = accessReviewWorkflowId(reviewId);
      const handle = await temporal.client.workflow.start(accessReview, {
        taskQueue,
        workflowId,
        args: [{ reviewId, requestedBy: 'test', deadlineMs: 15_000, reminderEveryMs: 4_000 }],
      });
      const outbox = () =>
        db
          .select()
          .from(notifications)
          .where(like(notifications.idempotencyKey, `${workflowId}:%`));
      await waitFor(async () => {
        const sent = (await outbox()).filter((n) => n.idempotencyKey.includes(':request:') && n.status === 'sent');
        return sent.length === 2 ? true : undefined;
      }, 'both reviewers asked');
      await handle.executeUpdate(accessDecisionUpdate, {
        args: [
          { userId: reviewer1.userId, role: 'approver' },
          { grantId: grants[0]!.id, decision: 'keep' },
        ],
      });

      first.child.kill('SIGKILL');
      await once(first.child, 'exit');
      await new Promise((r) => setTimeout(r, 2_000));
      await replacement.go();

      const outcome = await handle.result();
      expect(outcome).toMatchObject({ total: 3, kept: 1, revoked: 0, notCertified: 2, ended: 0 });
      const [review] = await db.select().from(accessReviews).where(eq(accessReviews.id, reviewId));
      expect(review).toMatchObject({ status: 'closed', summary: { total: 3, kept: 1, notCertified: 2 } });
      for (const g of grants.slice(1)) {
        const revocations = await db
          .select()
          .from(auditLog)
          .where(and(eq(auditLog.action, 'access-grant.revoked'), eq(auditLog.targetId, g.id)));
        expect(revocations.map((e) => e.details)).toEqual([{ reason: 'not-certified', userId: g.userId }]);
      }
      const [kept] = await db.select().from(accessGrants).where(eq(accessGrants.id, grants[0]!.id));
      expect(kept!.revokedAt).toBeNull();
      // Each message once: one row per key (the key is unique), sent on its first attempt.
      const messages = await outbox();
      expect(messages.filter((n) => n.idempotencyKey.includes(':request:'))).toHaveLength(2);
      expect(messages.every((n) => n.status === 'sent' && n.attempts === 1)).toBe(true);
      // Reviewer 2 never answered: reminded at 4 s, 8 s and 12 s, once each.
      expect(
        messages
          .filter((n) => n.recipientRef === `user:${reviewer2.userId}` && n.template === 'access-review-reminder')
          .map((n) => n.idempotencyKey.split(':')[1])
          .sort(),
      ).toEqual(['reminder-1', 'reminder-2', 'reminder-3']);
    },
  );
});
