import { randomBytes, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../activities/audit-verify';
import { activitiesFor } from '../helpers/activities';
import { selfCheckWorkflowId } from '../../domain/ids';
import { bundleWorkflows } from '../../runtime/worker';
import { selfCheck } from '../../workflows';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { connectTestTemporal, type TestTemporal } from '../helpers/temporal';

let database: TestDatabase;
let temporal: TestTemporal;
let workflowBundle: WorkflowBundleWithSourceMap;

beforeAll(async () => {
  [database, temporal, workflowBundle] = await Promise.all([
    createTestDatabase(),
    connectTestTemporal(),
    bundleWorkflows(),
  ]);
});
afterAll(async () => {
  await temporal?.close();
  await database?.drop();
});

const workerFor = (taskQueue: string) =>
  Worker.create({
    connection: temporal.nativeConnection,
    taskQueue,
    workflowBundle,
    // The self-check never stages a file; the directory only has to be named.
    activities: activitiesFor({ database, keyring: temporal.keyring, stagingDir: tmpdir() }),
    dataConverter: temporal.dataConverter,
  });

describe('self-check workflow on the real worker', () => {
  it('round-trips a value and audits with workflow and run IDs', async () => {
    const taskQueue = temporal.taskQueue('self-check');
    const worker = await workerFor(taskQueue);
    const checkId = randomUUID();
    const token = `probe-${randomBytes(12).toString('hex')}`;
    const handle = await worker.runUntil(async () => {
      const h = await temporal.client.workflow.start(selfCheck, {
        taskQueue,
        workflowId: selfCheckWorkflowId(checkId),
        args: [{ checkId, token }],
      });
      expect(await h.result()).toMatchObject({ token, auditSeq: 1 });
      return h;
    });
    const [entry] = await database.sql`select * from audit_log where target_id = ${checkId}`;
    expect(entry).toMatchObject({ workflow_id: selfCheckWorkflowId(checkId), run_id: handle.firstExecutionRunId });

    // The payload codec: nothing the workflow carried is readable on the server.
    const history = await handle.fetchHistory();
    const raw = Buffer.from(JSON.stringify(history));
    expect(raw.includes(token)).toBe(false);
    expect(raw.includes(Buffer.from(token).toString('base64'))).toBe(false);
    const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    expect(Buffer.from(input?.metadata?.encoding ?? []).toString()).toBe('binary/encrypted');
  });

  it('keeps one valid chain under 50 concurrent appends from activities', async () => {
    const taskQueue = temporal.taskQueue('self-check-concurrent');
    const worker = await workerFor(taskQueue);
    const before = await verifyAuditChain(database.db);
    await worker.runUntil(
      Promise.all(
        Array.from({ length: 50 }, () => {
          const checkId = randomUUID();
          return temporal.client.workflow.execute(selfCheck, {
            taskQueue,
            workflowId: selfCheckWorkflowId(checkId),
            args: [{ checkId, token: 'concurrent' }],
          });
        }),
      ),
    );
    const after = await verifyAuditChain(database.db);
    expect(after).toMatchObject({ valid: true, entries: before.entries + 50 });
    const [{ runs }] = (await database.sql`
      select count(distinct run_id)::int as runs from audit_log where action = 'system.self-check'`) as unknown as [
      { runs: number },
    ];
    expect(runs).toBe(before.entries + 50);
  });
});
