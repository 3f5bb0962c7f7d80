import { randomUUID } from 'node:crypto';
import type { Worker } from '@temporalio/worker';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { incidents } from '../../db/schema';
import { incidentWorkflowId } from '../../domain/ids';
import type { SystemIncidentSpec } from '../../domain/incident';
import { systemIncident } from '../../workflows';
import { incidentStateQuery } from '../../workflows/incident';
import { pagesOf, seedPolicy, seedStaff, user } from '../helpers/incidents';
import { createTestServices, createTestWorker, type TestServices } from '../helpers/services';
import { waitFor } from '../helpers/wait';

let services: TestServices;
let worker: Worker;
let running: Promise<void>;

beforeAll(async () => {
  services = await createTestServices();
  worker = await createTestWorker(services);
  running = worker.run();
}, 120_000);
afterAll(async () => {
  worker?.shutdown();
  await running;
  await services?.close();
});

/** The backup issue's failed restore test, as its workflow would report it (a stand-in for restoreTest). */
const restoreTestFailed = (backupId: string): SystemIncidentSpec => ({
  kind: 'restore-test-failed',
  targetType: 'backup',
  targetId: backupId,
  severity: 'sev2',
  category: 'backup',
  reason: 'frame 3 failed authentication',
});
const run = (spec: SystemIncidentSpec) =>
  services.temporal.workflow.execute(systemIncident, {
    taskQueue: services.config.TEMPORAL_TASK_QUEUE,
    workflowId: `system-incident-test-${randomUUID()}`,
    args: [spec],
  });

describe('incidents opened by other processes', () => {
  it('without an escalation policy nothing is opened (the caller keeps its operator alert)', async () => {
    expect(await run(restoreTestFailed(randomUUID()))).toBeNull();
    expect(await services.database.db.select().from(incidents)).toEqual([]);
  });

  it('a failed restore test opens a sev2 incident that pages the newest policy and outlives its opener', async () => {
    const db = services.database.db;
    const responder = await seedStaff(db, services.keyring, 'responder');
    await seedPolicy(db, [{ targets: [user(responder.userId)], waitSeconds: 60 }]);
    const backupId = randomUUID();
    const incidentId = await run(restoreTestFailed(backupId));
    expect(incidentId).toMatch(/^[0-9a-f-]{36}$/);
    const [row] = await waitFor(async () => {
      const rows = await db.select().from(incidents).where(eq(incidents.id, incidentId!));
      return rows.length ? rows : undefined;
    }, 'the incident recorded');
    expect(row).toMatchObject({
      severity: 'sev2',
      category: 'backup',
      openedBy: 'system:systemIncident',
      status: 'triggered',
    });
    const pages = await waitFor(async () => {
      const p = await pagesOf(db, incidentId!);
      return p.length ? p : undefined;
    }, 'level 1 paged');
    expect(pages[0]).toMatchObject({ userId: responder.userId, level: 1 });
    const handle = services.temporal.workflow.getHandle(incidentWorkflowId(incidentId!));
    expect((await handle.query(incidentStateQuery)).status).toBe('triggered');
    await handle.terminate('test over');
  });
});
