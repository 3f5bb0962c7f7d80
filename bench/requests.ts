import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { inArray } from 'drizzle-orm';
import { buildSubjectExport, exportDocument } from '../activities/export';
import { sealExport, wrapForLink } from '../activities/export-crypto';
import { textSha256 } from '../activities/request-texts';
import { newSubject } from '../activities/subject-writer';
import { connect, type Database } from '../db/client';
import { requests, subjectFields, subjectKeys, subjects } from '../db/schema';
import { defaultCatalog } from '../domain/catalog';
import { requestWorkflowId } from '../domain/ids';
import type { RequestActor } from '../domain/request';
import { requestClock } from '../domain/request-clocks';
import { loadConfig } from '../runtime/config';
import { generateKeyFile, parseKeyring } from '../runtime/keyring';
import { resolveTemporalCli } from '../runtime/temporal-cli';
import { startDevServer } from '../runtime/temporal-server';
import { request } from '../workflows';
import { fulfilUpdate } from '../workflows/request';
import { compare, type ScenarioResult } from './harness';
import { startBenchWorker, type BenchWorker } from './worker';

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const summary = (label: string, ms: number[]) => {
  const s = [...ms].sort((a, b) => a - b);
  return `requests: ${label}: p50 ${Math.round(percentile(s, 50))} ms, p99 ${Math.round(percentile(s, 99))} ms, max ${Math.round(s.at(-1)!)} ms (n=${s.length})`;
};

/** Runs `work` over `items` with at most `limit` in flight. */
const pool = async <T>(items: T[], limit: number, work: (item: T) => Promise<void>) => {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
};

/**
 * `count` access requests (verified at intake) opened at once on a dev server with a real worker, then all fulfilled
 * at once as exports (the `fulfil` update, `inFlight` at a time from the client): requests opened per second, exports
 * ready per second and the p50/p99 time from a fulfil to its export being ready (the update's answer: the export
 * sealed, its row, event and audit committed). Baseline, same run: the same exports (read, decrypt, JSON + CSV, seal,
 * wrap, hash) built in a plain loop with the same number in flight, nothing recorded. BENCH_REQUESTS sets the count.
 */
export async function requestBenchmark(ctx: {
  databaseUrl: string;
  count?: number;
  inFlight?: number;
}): Promise<ScenarioResult> {
  const count = ctx.count ?? Number(process.env.BENCH_REQUESTS ?? 5_000);
  const inFlight = ctx.inFlight ?? 100;
  const work = await mkdtemp(join(tmpdir(), 'custodian-bench-requests-'));
  const database: Database = connect(ctx.databaseUrl);
  const db = database.db;
  const keyring = parseKeyring(generateKeyFile(), 'bench');
  const config = loadConfig({});
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // Installed by an earlier scenario of the same run.
  }
  const cli = await resolveTemporalCli(process.env, () => {});
  if (!cli.path) throw new Error('the request benchmark needs a Temporal CLI (TEMPORAL_CLI_PATH, PATH, cache or go)');
  const server = await startDevServer({ cliPath: cli.path });
  let bench: BenchWorker | undefined;
  try {
    const subjectIds: string[] = [];
    for (let i = 0; i < count; i += 500) {
      const made = Array.from({ length: Math.min(500, count - i) }, (_, j) =>
        newSubject(
          defaultCatalog,
          keyring,
          { externalRef: `bench-${randomUUID()}`, jurisdiction: 'CN', locale: 'zh-CN', fields: {} },
          new Map<string, string | number>([
            ['name', `Bench ${i + j}`],
            ['email', `bench.${i + j}@mail.example`],
            ['phone', `1380000${String(i + j).padStart(4, '0')}`],
            ['creditScore', 600 + ((i + j) % 200)],
            ['segment', 'retail'],
          ]),
        ),
      );
      await db.insert(subjects).values(made.map((m) => m.subject));
      await db.insert(subjectKeys).values(
        made.map((m) => ({
          subjectId: m.subject.id,
          keyVersion: 1,
          kekVersion: m.kekVersion,
          wrappedKey: m.wrappedKey,
        })),
      );
      await db
        .insert(subjectFields)
        .values(made.flatMap((m) => m.fields.map((f) => ({ ...f, subjectId: m.subject.id }))));
      subjectIds.push(...made.map((m) => m.subject.id));
    }

    // Baseline: the same exports in a plain loop, as many in flight, nothing written.
    const baselineStarted = performance.now();
    await pool(subjectIds, inFlight, async (subjectId) => {
      const exported = await buildSubjectExport(
        { db, keyring, catalog: defaultCatalog },
        subjectId,
        randomUUID(),
        new Date(),
      );
      const document = exportDocument(exported!);
      const exportId = randomUUID();
      const { contentKey } = sealExport(exportId, document);
      wrapForLink(keyring, exportId, contentKey);
      textSha256(document);
    });
    const baselineSeconds = (performance.now() - baselineStarted) / 1000;

    bench = await startBenchWorker({
      address: server.address,
      name: 'requests',
      database,
      keyring,
      stagingDir: join(work, 'staging'),
      config,
    });
    const { client, worker, taskQueue } = bench;
    const ids = subjectIds.map(() => randomUUID());
    const by: RequestActor = { actor: 'user:bench', role: 'owner', method: 'api' };
    const result = await worker.runUntil(async () => {
      const openedAt = performance.now();
      await pool(ids, 500, async (requestId) => {
        const i = ids.indexOf(requestId);
        await client.workflow.start(request, {
          taskQueue,
          workflowId: requestWorkflowId(requestId),
          args: [
            {
              requestId,
              type: 'access',
              subjectId: subjectIds[i]!,
              channel: 'api',
              clock: requestClock('CN', 'access', Date.now(), { cnDefaultMs: config.CUSTODIAN_CN_REQUEST_WINDOW }),
              fields: [],
              purposes: [],
              verification: { method: 'other', referenceTextId: randomUUID(), by: 'bench' },
              filedBy: 'bench',
              linkTtlMs: 3_600_000,
              destruction: { approvalWindowMs: 86_400_000, graceMs: 86_400_000 },
            },
          ],
        });
      });
      for (;;) {
        const rows = await db.select({ id: requests.id }).from(requests).where(inArray(requests.id, ids));
        if (rows.length === count) break;
        if (performance.now() - openedAt > 15 * 60_000) throw new Error('requests were not all opened in 15 minutes');
        await new Promise((r) => setTimeout(r, 200));
      }
      const openSeconds = (performance.now() - openedAt) / 1000;
      const latencies: number[] = [];
      const fulfilStarted = performance.now();
      await pool(ids, inFlight, async (requestId) => {
        const t = performance.now();
        await client.workflow
          .getHandle(requestWorkflowId(requestId))
          .executeUpdate(fulfilUpdate, { args: [by, { delivery: 'password' }] });
        latencies.push(performance.now() - t);
      });
      return { openSeconds, fulfilSeconds: (performance.now() - fulfilStarted) / 1000, latencies };
    });
    console.log(
      `requests: ${count} opened in ${result.openSeconds.toFixed(1)} s (${Math.round(count / result.openSeconds)}/s, rows written by the workflows)`,
    );
    console.log(summary('fulfil → export ready', result.latencies));
    console.log(
      `requests: baseline ${count} exports in ${baselineSeconds.toFixed(1)} s; workflows ${count} exports in ${result.fulfilSeconds.toFixed(1)} s`,
    );
    return compare(
      `requests (${count} access requests opened at once, fulfilled as exports, ${inFlight} in flight)`,
      { label: 'exports built in a plain loop', perSecond: count / baselineSeconds },
      { label: 'exports through request workflows (fulfil)', perSecond: count / result.fulfilSeconds },
    );
  } finally {
    await bench?.close();
    await server.stop();
    await database.close();
    await rm(work, { recursive: true, force: true });
  }
}
