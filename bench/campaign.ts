import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { notifyActivities } from '../activities/notify';
import { insertNewSubjects, newSubject, rawSql } from '../activities/subject-writer';
import { connect, type Database } from '../db/client';
import { CAMPAIGN_DEFAULTS } from '../domain/campaign';
import { defaultCatalog } from '../domain/catalog';
import { campaignWorkflowId } from '../domain/ids';
import { loadConfig } from '../runtime/config';
import { generateKeyFile, parseKeyring, type Keyring } from '../runtime/keyring';
import { createLogger } from '../runtime/logger';
import { resolveTemporalCli } from '../runtime/temporal-cli';
import { startDevServer } from '../runtime/temporal-server';
import { campaign } from '../workflows';
import { campaignProgressQuery, pauseUpdate, resumeUpdate } from '../workflows/campaign';
import { startBenchWorker, type BenchWorker } from './worker';
import { compare, type ScenarioResult } from './harness';

/** `count` clearly fake subjects with an encrypted example.invalid address, in bulk, under one import ID. */
const insertSubjects = async (database: Database, keyring: Keyring, count: number): Promise<string> => {
  const importId = randomUUID();
  for (let from = 0; from < count; from += 1000) {
    const batch = Array.from({ length: Math.min(1000, count - from) }, (_, k) => {
      const n = `${importId.slice(0, 8)}-${String(from + k).padStart(6, '0')}`;
      return newSubject(
        defaultCatalog,
        keyring,
        { externalRef: `BENCH-CMP-${n}`, jurisdiction: 'CN', locale: 'zh-CN', fields: {} },
        new Map([['email', `bench.${n}@example.invalid`]]),
      );
    });
    await rawSql(database.db).begin((tx) => insertNewSubjects(tx, importId, batch));
  }
  return importId;
};

/** A local webhook receiver: answers every POST with 200 and counts them. */
const startReceiver = async () => {
  let received = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received += 1;
      res.end('ok');
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received: () => received,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
};

/**
 * Transfer-notice campaign scenario: `subjects` subjects notified by webhook to a receiver in this process,
 * (1) through `campaign-{id}` on a Temporal dev server (payload codec, the production bundle and activities,
 * default batch size and in-batch concurrency) and (2) against a same-run baseline: the same notices through
 * the same notifier code (`notifyActivities(...).sendNotification`, outbox, decryption, signature, audit) with
 * the same concurrency in a plain loop, without Temporal. Each side has its own subjects and its own pool of
 * the same size. The two take turns in four rounds (the campaign paused meanwhile: a pause returns once no
 * batch is in flight) and each side's time is the sum of its turns; the dev server and bundle are not timed.
 */
export async function campaignBenchmark(ctx: { databaseUrl: string; subjects?: number }): Promise<ScenarioResult[]> {
  const subjects = ctx.subjects ?? 20_000;
  const keyring = parseKeyring(generateKeyFile(), 'bench');
  const receiver = await startReceiver();
  const config = loadConfig({
    CUSTODIAN_NOTIFY_CHANNEL: 'webhook',
    CUSTODIAN_NOTIFY_WEBHOOK_URL: receiver.url,
    CUSTODIAN_NOTIFY_WEBHOOK_SECRET: 'bench-webhook-secret-'.padEnd(40, 'x'),
  });
  const logger = createLogger('silent');
  const baselineDb = connect(ctx.databaseUrl);
  const workerDb = connect(ctx.databaseUrl);
  const work = await mkdtemp(join(tmpdir(), 'custodian-bench-campaign-'));
  // The campaign's in-batch concurrency: its default, capped at half the pool as the batch activity caps it.
  const concurrency = Math.max(1, Math.min(CAMPAIGN_DEFAULTS.sendConcurrency, Math.floor(10 / 2)));
  // Worker state changes at INFO would bury the figures; another scenario may have installed it already.
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // installed
  }
  const cli = await resolveTemporalCli(process.env, () => {});
  if (!cli.path) throw new Error('the campaign benchmark needs a Temporal CLI (TEMPORAL_CLI_PATH, PATH, cache or go)');
  const server = await startDevServer({ cliPath: cli.path });
  let bench: BenchWorker | undefined;
  try {
    const [baselineImport, campaignImport] = [
      await insertSubjects(baselineDb, keyring, subjects),
      await insertSubjects(baselineDb, keyring, subjects),
    ];
    const noticeId = randomUUID();
    await baselineDb.sql`
      insert into notices (id, purpose, version, texts, handler, previous_handler, text_sha256, created_by)
      values (${noticeId}, 'customer-service', 1,
        ${JSON.stringify({
          'zh-CN': { title: '个人信息转移告知', body: '您的个人信息已转移至新的处理者。' },
          en: { title: 'Transfer of your personal information', body: 'Your personal information was transferred.' },
        })}::jsonb,
        ${JSON.stringify({ name: 'Example Credit Ltd', contact: 'privacy@credit.example' })}::jsonb,
        ${JSON.stringify({ name: 'Old Credit Ltd' })}::jsonb, ${'0'.repeat(64)}, 'bench')`;

    // Baseline: the notifier alone, `concurrency` lanes over the baseline's subjects, a round's share at a time.
    const ids = (
      await baselineDb.sql<{ id: string }[]>`select id from subjects where import_id = ${baselineImport} order by id`
    ).map((r) => r.id);
    const notifier = notifyActivities({ db: baselineDb.db, keyring, config, logger, clock: () => new Date() });
    const env = new MockActivityEnvironment();
    const run = `bench-${randomUUID()}`;
    let next = 0;
    const baselineRound = async (upTo: number) => {
      const started = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < upTo) {
            const subjectId = ids[next++]!;
            await env.run(notifier.sendNotification, {
              idempotencyKey: `${run}:notice:${subjectId}`,
              template: 'transfer-notice' as const,
              subjectId,
              noticeId,
            });
          }
        }),
      );
      return (performance.now() - started) / 1000;
    };

    // Subject: the campaign workflow end to end, one campaign over all its subjects.
    bench = await startBenchWorker({
      address: server.address,
      name: 'campaign',
      database: workerDb,
      keyring,
      stagingDir: work,
      config,
      logger,
    });
    const { client, worker, taskQueue } = bench;
    const campaignId = randomUUID();
    const rounds = 4;
    const share = Math.ceil(subjects / rounds);
    let baselineSeconds = 0;
    let campaignSeconds = 0;
    // Baseline and campaign take turns (the campaign paused meanwhile), so load from other processes on a
    // shared machine falls on both alike; each side's time is the sum of its turns.
    const report = await worker.runUntil(async () => {
      let started = performance.now();
      const handle = await client.workflow.start(campaign, {
        taskQueue,
        workflowId: campaignWorkflowId(campaignId),
        args: [
          {
            campaignId,
            noticeId,
            purposeChanged: false,
            filter: { importId: campaignImport },
            batchSize: CAMPAIGN_DEFAULTS.batchSize,
            requestedBy: 'bench',
          },
        ],
      });
      for (let round = 1; round < rounds; round++) {
        for (;;) {
          const progress = await handle.query(campaignProgressQuery);
          if (progress.counts.targeted >= round * share) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        await handle.executeUpdate(pauseUpdate);
        campaignSeconds += (performance.now() - started) / 1000;
        baselineSeconds += await baselineRound(Math.min(round * share, subjects));
        started = performance.now();
        await handle.executeUpdate(resumeUpdate);
      }
      const result = await handle.result();
      campaignSeconds += (performance.now() - started) / 1000;
      baselineSeconds += await baselineRound(subjects);
      return result;
    });
    if (report.status !== 'completed' || report.notified !== subjects)
      throw new Error(`campaign ${report.status}: notified ${report.notified} of ${subjects}`);
    const [sent] = await baselineDb.sql<{ baseline: number; campaign: number }[]>`
      select count(*) filter (where idempotency_key like ${`${run}:%`} and status = 'sent')::int as baseline,
        count(*) filter (where workflow_id = ${campaignWorkflowId(campaignId)} and status = 'sent')::int as campaign
      from notifications`;
    if (sent!.baseline !== subjects || sent!.campaign !== subjects || receiver.received() !== 2 * subjects)
      throw new Error(`sent ${sent!.baseline} + ${sent!.campaign}, received ${receiver.received()}`);
    return [
      compare(
        `transfer-notice campaign: ${subjects.toLocaleString('en')} subjects by webhook, ${concurrency} in flight (notices/s)`,
        { label: 'sendNotification in a plain loop, no Temporal', perSecond: subjects / baselineSeconds },
        {
          label: `campaign-{id} workflow, batches of ${CAMPAIGN_DEFAULTS.batchSize}`,
          perSecond: subjects / campaignSeconds,
        },
      ),
    ];
  } finally {
    await bench?.close();
    await server.stop();
    await receiver.close();
    await baselineDb.close();
    await workerDb.close();
    await rm(work, { recursive: true, force: true });
  }
}
