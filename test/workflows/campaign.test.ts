import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { campaignNoticeKey } from '../../activities/campaigns';
import type { CampaignInput } from '../../domain/campaign';
import { campaignWorkflowId } from '../../domain/ids';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { campaign } from '../../workflows';
import { campaignProgressQuery, cancelUpdate, pauseUpdate, resumeUpdate } from '../../workflows/campaign';
import { insertSubjects } from '../helpers/campaign-subjects';
import { insertNotice } from '../helpers/notifications';
import { createTestServices, createTestWorker, testWorkflowBundle, type TestServices } from '../helpers/services';
import { connectTestTemporal } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

const keyFile = generateKeyFile();
let services: TestServices;
let worker: Worker;
let running: Promise<void>;
let noticeId: string;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custodian-campaign-wf-'));
  services = await createTestServices({ temporal: await connectTestTemporal(parseKeyring(keyFile, 'test')) });
  worker = await createTestWorker(services);
  running = worker.run();
  noticeId = await insertNotice(services.database.db);
}, 180_000);
afterAll(async () => {
  worker?.shutdown();
  await running;
  await services?.testTemporal.close();
  await services?.close();
  await rm(dir, { recursive: true, force: true });
});

const start = (o: Partial<CampaignInput> & { filter: CampaignInput['filter'] }, taskQueue?: string) => {
  const campaignId = randomUUID();
  return services.temporal.workflow.start(campaign, {
    taskQueue: taskQueue ?? services.config.TEMPORAL_TASK_QUEUE,
    workflowId: campaignWorkflowId(campaignId),
    args: [{ campaignId, noticeId, purposeChanged: false, batchSize: 500, requestedBy: 'user:test', ...o }],
  });
};

const count = async (query: string, ...params: string[]) => {
  const [row] = await services.database.sql.unsafe<{ n: string }[]>(query, params);
  return Number(row!.n);
};
/** Outbox rows of a campaign's transfer notices. */
const outbox = (workflowId: string) =>
  count(`select count(*) n from notifications where idempotency_key like $1`, `${workflowId}:notice:%`);

describe('campaign workflow', () => {
  it(
    'notifies 5,000 subjects once each, with exact counts, continuing as new every 4 batches',
    { timeout: 180_000 },
    async () => {
      const { importId, ids } = await insertSubjects(services.database.db, services.keyring, 4_990);
      const { ids: unreachable } = await insertSubjects(services.database.db, services.keyring, 10, {
        importId,
        withoutAddress: true,
      });
      const handle = await start({ filter: { importId }, batchSize: 500, batchesPerRun: 4 });
      const report = await handle.result();
      expect(report).toMatchObject({
        status: 'completed',
        total: 5_000,
        targeted: 5_000,
        notified: 4_990,
        failed: 10,
        consentsRequested: 0,
        batches: 10,
        error: null,
      });
      const campaignId = handle.workflowId.slice('campaign-'.length);
      expect(await outbox(handle.workflowId)).toBe(5_000);
      expect(
        await count(
          `select count(distinct subject_id) n from notifications where idempotency_key like $1 and status = 'sent'`,
          `${handle.workflowId}:notice:%`,
        ),
      ).toBe(4_990);
      // Every subject's message under its own key, and one row each.
      const keys = await services.database.sql<{ idempotency_key: string }[]>`
        select idempotency_key from notifications where subject_id = ${ids[17]!}`;
      expect(keys.map((k) => k.idempotency_key)).toEqual([campaignNoticeKey(campaignId, ids[17]!)]);
      expect(
        await count(
          `select count(*) n from campaign_targets where campaign_id = $1 and outcome = 'failed' and error = 'NoRecipient'
             and subject_id = any($2::uuid[])`,
          campaignId,
          `{${unreachable.join(',')}}`,
        ),
      ).toBe(10);
      // The chain: 10 batches at 4 per run is three runs; the first two continued as new.
      const first = services.temporal.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId);
      expect((await first.describe()).status.name).toBe('CONTINUED_AS_NEW');
      const [stored] = await services.database.sql`select status, report from campaigns where id = ${campaignId}`;
      expect(stored).toMatchObject({ status: 'completed', report: { notified: 4_990, failed: 10 } });
      const audit = await services.database.sql<{ action: string; n: string }[]>`
        select action, count(*) n from audit_log where target_type = 'campaign' and target_id = ${campaignId}
        group by action order by action`;
      expect(audit.map((a) => [a.action, Number(a.n)])).toEqual([
        ['campaign.batch-committed', 10],
        ['campaign.completed', 1],
        ['campaign.started', 1],
      ]);
    },
  );

  it('pause holds sending, resume continues, cancel stops and stores the report', { timeout: 120_000 }, async () => {
    const { importId } = await insertSubjects(services.database.db, services.keyring, 2_000);
    const handle = await start({ filter: { importId }, batchSize: 50, ratePerSecond: 400 });
    await waitFor(async () => ((await outbox(handle.workflowId)) >= 100 ? true : undefined), 'the first batches');

    const paused = await handle.executeUpdate(pauseUpdate);
    expect(paused.status).toBe('paused');
    const held = await outbox(handle.workflowId);
    expect(held).toBe(paused.counts.targeted);
    // Nothing is sent while paused: an observation window of a few batches' worth of time.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await outbox(handle.workflowId)).toBe(held);
    expect((await handle.query(campaignProgressQuery)).status).toBe('paused');

    expect((await handle.executeUpdate(resumeUpdate)).status).toBe('running');
    await waitFor(async () => ((await outbox(handle.workflowId)) >= held + 100 ? true : undefined), 'sending again');

    const report = await handle.executeUpdate(cancelUpdate);
    expect(report.status).toBe('cancelled');
    expect(report.targeted).toBeLessThan(2_000);
    expect(report.notified).toBe(report.targeted);
    expect(await handle.result()).toEqual(report);
    const stopped = await outbox(handle.workflowId);
    expect(stopped).toBe(report.targeted);
    await expect(handle.executeUpdate(pauseUpdate)).rejects.toThrow();
    expect(await outbox(handle.workflowId)).toBe(stopped);
  });

  it(
    'survives a SIGKILLed worker mid-campaign: 3,000 subjects, none notified twice',
    { timeout: 240_000 },
    async () => {
      const { importId, ids } = await insertSubjects(services.database.db, services.keyring, 3_000);
      const bundlePath = join(dir, 'workflow-bundle.js');
      await writeFile(bundlePath, (await testWorkflowBundle()).code);
      const taskQueue = services.testTemporal.taskQueue('campaign-kill');
      const children: ChildProcess[] = [];
      const spawnWorker = async () => {
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', fileURLToPath(new URL('../helpers/import-worker.ts', import.meta.url))],
          {
            env: {
              ...process.env,
              TEMPORAL_ADDRESS: inject('temporalAddress'),
              TASK_QUEUE: taskQueue,
              DATABASE_URL: services.testDatabase.url,
              STAGING_DIR: dir,
              KEY_FILE_JSON: JSON.stringify(keyFile),
              WORKFLOW_BUNDLE: bundlePath,
            },
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
        children.push(child);
        let output = '';
        child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
        await waitFor(async () => (output.includes('ready') ? true : undefined), 'the worker to start');
        return child;
      };
      try {
        const first = await spawnWorker();
        const handle = await start(
          { filter: { importId }, batchSize: 400, batchHeartbeatTimeout: '3 seconds' },
          taskQueue,
        );
        // Killed mid-batch: some of a batch sent, the batch not yet committed.
        await waitFor(async () => {
          const sent = await outbox(handle.workflowId);
          return sent > 600 && sent % 400 !== 0 ? sent : undefined;
        }, 'a batch in flight');
        first.kill('SIGKILL');
        await once(first, 'exit');
        expect(await outbox(handle.workflowId)).toBeLessThan(3_000);

        await spawnWorker();
        const report = await handle.result();
        expect(report).toMatchObject({
          status: 'completed',
          total: 3_000,
          targeted: 3_000,
          notified: 3_000,
          failed: 0,
        });
        const perSubject = await services.database.sql<{ rows: number; subjects: number; most: number }[]>`
          select sum(n)::int as rows, count(*)::int as subjects, max(n)::int as most
          from (select subject_id, count(*) n from notifications
                where idempotency_key like ${`${handle.workflowId}:notice:%`} group by subject_id) per`;
        expect(perSubject[0]).toEqual({ rows: 3_000, subjects: 3_000, most: 1 });
        expect(
          await count(
            `select count(*) n from notifications where subject_id = any($1::uuid[]) and status = 'sent'`,
            `{${ids.join(',')}}`,
          ),
        ).toBe(3_000);
        expect(
          await count(
            `select count(*) n from audit_log where action = 'notification.sent' and details->>'template' = 'transfer-notice'
               and target_id = any($1::text[])`,
            `{${ids.join(',')}}`,
          ),
        ).toBe(3_000);
        expect(
          await count(
            `select coalesce(sum(subjects), 0) n from campaign_batches where campaign_id = $1`,
            report.campaignId,
          ),
        ).toBe(3_000);
      } finally {
        for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await Promise.all(
          children.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)),
        );
      }
    },
  );
});
