import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { newSubject } from '../activities/subject-writer';
import { createNotice } from '../activities/notices';
import { connect, type Database } from '../db/client';
import { subjectFields, subjectKeys, subjects } from '../db/schema';
import { defaultCatalog } from '../domain/catalog';
import type { ConsentInput } from '../domain/consent';
import { consentWorkflowId } from '../domain/ids';
import { generateKeyFile, parseKeyring, type Keyring } from '../runtime/keyring';
import { dataConverterFor } from '../runtime/payload-codec';
import { resolveTemporalCli } from '../runtime/temporal-cli';
import { startDevServer } from '../runtime/temporal-server';
import { consent } from '../workflows/consent';
import type { ChildMessage, ParentMessage, WorkerReport } from './consent-memory-worker';
import type { MemoryResult } from './harness';

const DAY_MS = 86_400_000;
const WARM_UP = 200;
/**
 * Activities at once in the worker, below its pool's 10 connections: a send holds a reserved connection while
 * it queries through the same pool, so 10 concurrent sends wait on each other for ever (docs/decisions.md).
 */
const ACTIVITY_CONCURRENCY = 8;
const WAITING_MARK = 'bench:waiting';
const WARM_UP_MARK = 'bench:warm-up';

/** Subjects with an encrypted email, written as the import writes them, in chunks. */
const seedSubjects = async (db: Database['db'], keyring: Keyring, count: number): Promise<string[]> => {
  const ids: string[] = [];
  for (let from = 0; from < count; from += 500) {
    const made = Array.from({ length: Math.min(500, count - from) }, (_, k) => {
      const n = String(from + k).padStart(6, '0');
      return newSubject(
        defaultCatalog,
        keyring,
        { externalRef: `BENCH-CONSENT-${n}`, jurisdiction: 'CN', locale: k % 2 ? 'en' : 'zh-CN', fields: {} },
        new Map([['email', `fake.${n}@example.invalid`]]),
      );
    });
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
    ids.push(...made.map((m) => m.subject.id));
  }
  return ids;
};

/** Polls a probe every `everyMs` until it holds; the bench waits on state, not on a guessed duration. */
const poll = async (what: string, probe: () => Promise<boolean>, everyMs = 250, timeoutMs = 1_800_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
};

/** Resident set size of a process, from /proc/<pid>/status (VmRSS, or VmHWM for the peak). */
const procMiB = (pid: number, field: 'VmRSS' | 'VmHWM'): number => {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${field}:`));
  if (!line) throw new Error(`no ${field} for process ${pid}`);
  return Number(/(\d+) kB/.exec(line)![1]) / 1024;
};

/** The worker child: one request at a time, each answered by its next message. */
const workerChild = (env: Record<string, string>) => {
  const child: ChildProcess = fork(fileURLToPath(new URL('./consent-memory-worker.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = () =>
    new Promise<WorkerReport>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the bench worker exited (${code})`));
      child.once('exit', onExit);
      child.once('message', (m: ChildMessage) => {
        child.off('exit', onExit);
        if (m.type === 'error') reject(new Error(`the bench worker failed: ${m.message}`));
        else resolve(m.report);
      });
    });
  const ask = (m: ParentMessage) => {
    const answer = next();
    child.send(m);
    return answer;
  };
  return { child, ready: next(), ask };
};

interface Sample {
  waiting: number;
  /** VmRSS when idle, before and after a forced collection of the main heap. */
  rssMiB: number;
  rssAfterGcMiB: number;
  report: WorkerReport;
}

/**
 * The worker's resident memory with 10,000 consent workflows waiting for an answer (log channel, a 30-day
 * window, no reminder due) against the same worker, warmed up by consents that ran to expiry, with none
 * waiting. The worker is a child process with createWorker's defaults (the workflow cache at its default
 * size); its VmRSS is read from /proc once every started workflow has its request recorded and sent (DB
 * state) and the worker has nothing in flight, at steps on the way, to show whether the cache bounds it.
 */
export async function consentMemoryBenchmark(ctx: { databaseUrl: string; waiting?: number }): Promise<MemoryResult> {
  const waiting = ctx.waiting ?? 10_000;
  const steps = [1_000, 2_500, 5_000, 7_500, waiting].filter((n, i, all) => n <= waiting && all.indexOf(n) === i);
  const cli = await resolveTemporalCli(process.env, () => {});
  if (!cli.path)
    throw new Error('the consent-memory bench needs a Temporal CLI (TEMPORAL_CLI_PATH, PATH, cache or go)');
  const server = await startDevServer({ cliPath: cli.path });
  const database = connect(ctx.databaseUrl);
  const keyFile = generateKeyFile();
  const keyring = parseKeyring(keyFile, 'bench');
  const taskQueue = `bench-consent-memory-${randomUUID()}`;
  let connection: Connection | undefined;
  let worker: ReturnType<typeof workerChild> | undefined;
  try {
    const [subjectIds, notice] = await Promise.all([
      seedSubjects(database.db, keyring, WARM_UP + waiting),
      createNotice(
        database.db,
        {
          purpose: 'marketing',
          texts: {
            'zh-CN': { title: '营销信息使用告知', body: '我们将使用您的联系方式发送营销信息。' },
            en: { title: 'Use of your contact details', body: 'We will use your contact details for marketing.' },
          },
          handler: { name: 'Bench Handler Ltd', contact: 'privacy@handler.invalid' },
        },
        { actor: 'bench' },
      ),
    ]);
    connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection, namespace: 'default', dataConverter: dataConverterFor(keyring) });
    const start = async (from: number, to: number, mark: string, respondWithinMs: number) => {
      let next = from;
      const one = async (subjectId: string) => {
        const consentId = randomUUID();
        const input: ConsentInput = {
          consentId,
          subjectId,
          noticeId: notice.id,
          purpose: notice.purpose,
          channel: 'email',
          respondWithinMs,
          remindEveryMs: 7 * DAY_MS,
          maxReminders: respondWithinMs > 7 * DAY_MS ? 3 : 0,
          validForMs: 365 * DAY_MS,
          requestedBy: mark,
          round: 1,
        };
        await client.workflow.start(consent, { taskQueue, workflowId: consentWorkflowId(consentId), args: [input] });
      };
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < to) await one(subjectIds[next++]!);
        }),
      );
    };
    const count = async (mark: string, status: string): Promise<number> => {
      const [row] = await database.sql<{ n: number }[]>`
        select count(*)::int as n from consents c
        join notifications n on n.workflow_id = 'consent-' || c.id::text
          and n.template = 'consent-request' and n.status = 'sent'
        where c.requested_by = ${mark} and c.status = ${status}`;
      return row!.n;
    };

    worker = workerChild({
      BENCH_KEYRING: JSON.stringify(keyFile),
      BENCH_DATABASE: ctx.databaseUrl,
      BENCH_TEMPORAL_ADDRESS: server.address,
      BENCH_TASK_QUEUE: taskQueue,
      BENCH_ACTIVITY_CONCURRENCY: String(ACTIVITY_CONCURRENCY),
    });
    const { child, ask } = worker;
    await worker.ready;
    const idle = async () => {
      let quiet = 0;
      await poll('the worker idle', async () => {
        const r = await ask({ type: 'status' });
        quiet = r.inFlightActivations === 0 && r.inFlightActivities === 0 ? quiet + 1 : 0;
        return quiet >= 3;
      });
    };
    const sample = async (n: number): Promise<Sample> => {
      await idle();
      const rssMiB = procMiB(child.pid!, 'VmRSS');
      const report = await ask({ type: 'gc' });
      return { waiting: n, rssMiB, rssAfterGcMiB: procMiB(child.pid!, 'VmRSS'), report };
    };
    const until = (what: string, probe: () => Promise<boolean>) => poll(what, probe, 500);

    // Warm-up: the same code paths to the end (request, message, expiry), so the baseline is a worker that has
    // run consents and holds none: a finished workflow leaves the cache.
    await start(0, WARM_UP, WARM_UP_MARK, 2_000);
    await until('the warm-up consents expired', async () => (await count(WARM_UP_MARK, 'expired')) === WARM_UP);
    const baseline = await sample(0);

    const samples: Sample[] = [];
    const startedAt = performance.now();
    let started = 0;
    for (const step of steps) {
      await start(WARM_UP + started, WARM_UP + step, WAITING_MARK, 30 * DAY_MS);
      started = step;
      await until(`${step} consents waiting`, async () => (await count(WAITING_MARK, 'requested')) === step);
      samples.push(await sample(step));
    }
    const seconds = (performance.now() - startedAt) / 1000;
    const peakMiB = procMiB(child.pid!, 'VmHWM');
    const last = samples[samples.length - 1]!;
    const max = last.report.maxCachedWorkflows;
    const full = samples.find((s) => s.report.numCachedWorkflows >= max);
    const perCached = samples.find((s) => s.report.numCachedWorkflows < max && s.waiting > 0);
    const kib = (mib: number, n: number) => ((mib * 1024) / n).toFixed(0);
    const growthAfterFull = full ? last.rssAfterGcMiB - full.rssAfterGcMiB : undefined;
    const bounded =
      full === undefined
        ? `not shown: the cache (${max}) never filled`
        : `${growthAfterFull! <= 0.1 * (full.rssAfterGcMiB - baseline.rssAfterGcMiB) ? 'yes' : 'no'}: +${growthAfterFull!.toFixed(0)} MiB from ${full.waiting.toLocaleString('en')} to ${last.waiting.toLocaleString('en')} waiting, once the cache was full`;

    child.send({ type: 'stop' } satisfies ParentMessage);
    await once(child, 'exit');
    return {
      name: `consent workflows waiting for an answer: worker resident memory (VmRSS after GC, log channel)`,
      baseline: { label: 'the same worker, warmed up, none waiting', mib: baseline.rssAfterGcMiB },
      subject: { label: `${waiting.toLocaleString('en')} consent workflows waiting`, mib: last.rssAfterGcMiB },
      ratio: last.rssAfterGcMiB / baseline.rssAfterGcMiB,
      notes: [
        `worker    createWorker's options but maxConcurrentActivityTaskExecutions ${ACTIVITY_CONCURRENCY} (pool 10)`,
        `cache     maxCachedWorkflows ${max.toLocaleString('en')} (the default for this heap); ${last.report.numCachedWorkflows.toLocaleString('en')} cached at the end`,
        `bounded   ${bounded}`,
        ...(perCached
          ? [
              `per run   ≈ ${kib(perCached.rssAfterGcMiB - baseline.rssAfterGcMiB, perCached.report.numCachedWorkflows)} KiB RSS per cached workflow (at ${perCached.waiting.toLocaleString('en')} waiting, all cached)`,
            ]
          : []),
        `steps     ${[baseline, ...samples].map((s) => `${s.waiting.toLocaleString('en')}: ${s.rssAfterGcMiB.toFixed(0)} MiB (${s.rssMiB.toFixed(0)} before GC, ${s.report.numCachedWorkflows} cached)`).join(' · ')}`,
        `peak      VmHWM ${peakMiB.toFixed(0)} MiB; ${waiting.toLocaleString('en')} started and waiting in ${seconds.toFixed(0)} s (${(waiting / seconds).toFixed(0)}/s, samples included)`,
      ],
    };
  } finally {
    if (worker && worker.child.exitCode === null) worker.child.kill('SIGKILL');
    await connection?.close();
    await database.close();
    await server.stop();
  }
}
