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

/** A worker configuration measured on its own task queue: the default cache, then a smaller one for contrast. */
interface Configuration {
  label: string;
  maxCachedWorkflows?: number;
}
const CONFIGURATIONS: Configuration[] = [
  { label: 'default workflow cache' },
  { label: 'workflow cache 500', maxCachedWorkflows: 500 },
];

class WorkerDied extends Error {}

interface Setup {
  client: Client;
  database: Database;
  keyFile: unknown;
  noticeId: string;
  temporalAddress: string;
  databaseUrl: string;
}

/**
 * One configuration: a fresh worker child, warmed up by consents that run to expiry (baseline), then consents
 * started up to each step and left waiting; VmRSS sampled at each step once all are recorded and sent (DB
 * state) and the worker has nothing in flight. A worker that dies ends the run with what was sampled.
 */
const measure = async (
  s: Setup,
  config: Configuration,
  subjectIds: string[],
  waiting: number,
  index: number,
): Promise<MemoryResult> => {
  const steps = [1_000, 2_000, 3_000, 5_000, 7_500, waiting].filter(
    (n, i, all) => n <= waiting && all.indexOf(n) === i,
  );
  const warmUpMark = `bench:warm-up:${index}`;
  const waitingMark = `bench:waiting:${index}`;
  const taskQueue = `bench-consent-memory-${randomUUID()}`;
  const worker = workerChild({
    BENCH_KEYRING: JSON.stringify(s.keyFile),
    BENCH_DATABASE: s.databaseUrl,
    BENCH_TEMPORAL_ADDRESS: s.temporalAddress,
    BENCH_TASK_QUEUE: taskQueue,
    BENCH_ACTIVITY_CONCURRENCY: String(ACTIVITY_CONCURRENCY),
    BENCH_MAX_CACHED_WORKFLOWS: String(config.maxCachedWorkflows ?? ''),
  });
  const { child, ask } = worker;
  const alive = () => {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new WorkerDied(`exit ${child.exitCode ?? child.signalCode}`);
  };
  const start = async (from: number, to: number, mark: string, respondWithinMs: number) => {
    let next = from;
    const one = async (subjectId: string) => {
      const consentId = randomUUID();
      const input: ConsentInput = {
        consentId,
        subjectId,
        noticeId: s.noticeId,
        purpose: 'marketing',
        channel: 'email',
        respondWithinMs,
        remindEveryMs: 7 * DAY_MS,
        maxReminders: respondWithinMs > 7 * DAY_MS ? 3 : 0,
        validForMs: 365 * DAY_MS,
        requestedBy: mark,
        round: 1,
      };
      await s.client.workflow.start(consent, { taskQueue, workflowId: consentWorkflowId(consentId), args: [input] });
    };
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < to) await one(subjectIds[next++]!);
      }),
    );
  };
  const count = async (mark: string, status: string): Promise<number> => {
    const [row] = await s.database.sql<{ n: number }[]>`
      select count(*)::int as n from consents c
      join notifications n on n.workflow_id = 'consent-' || c.id::text
        and n.template = 'consent-request' and n.status = 'sent'
      where c.requested_by = ${mark} and c.status = ${status}`;
    return row!.n;
  };
  const until = (what: string, probe: () => Promise<boolean>) => poll(what, async () => (alive(), probe()), 500);
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

  const samples: Sample[] = [];
  let baseline: Sample | undefined;
  let died: string | undefined;
  let peakMiB = 0;
  const startedAt = performance.now();
  try {
    await worker.ready;
    // Warm-up: the same code paths to the end (request, message, expiry), so the baseline is a worker that has
    // run consents and holds none: a finished workflow leaves the cache.
    await start(0, WARM_UP, warmUpMark, 2_000);
    await until('the warm-up consents expired', async () => (await count(warmUpMark, 'expired')) === WARM_UP);
    baseline = await sample(0);
    let started = 0;
    for (const step of steps) {
      await start(WARM_UP + started, WARM_UP + step, waitingMark, 30 * DAY_MS);
      started = step;
      await until(`${step} consents waiting`, async () => (await count(waitingMark, 'requested')) === step);
      samples.push(await sample(step));
      peakMiB = procMiB(child.pid!, 'VmHWM');
    }
  } catch (err) {
    if (!(err instanceof WorkerDied) && !/bench worker exited/.test((err as Error).message)) throw err;
    died = `the worker died (${(err as Error).message}) with ${(await count(waitingMark, 'requested')).toLocaleString('en')} waiting`;
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.send({ type: 'stop' } satisfies ParentMessage);
      // A worker thrashing its heap may not drain: it gets a minute, then it is killed.
      const exited = once(child, 'exit');
      if ((await Promise.race([exited.then(() => true), sleep(60_000).then(() => false)])) === false) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  }
  if (!baseline) throw new Error(`${config.label}: no baseline (${died ?? 'unknown'})`);
  const seconds = (performance.now() - startedAt) / 1000;
  const last = samples[samples.length - 1] ?? baseline;
  const max = baseline.report.maxCachedWorkflows;
  // Full within 1%: the SDK may evict a few runs ahead of the limit.
  const isFull = (x: Sample) => x.report.numCachedWorkflows >= 0.99 * max;
  const full = samples.find(isFull);
  const perCached = samples.find((x) => !isFull(x));
  const mib = (x: number) => `${x.toFixed(0)} MiB`;
  const n = (x: number) => x.toLocaleString('en');
  const bounded =
    full === undefined
      ? `not shown: the cache (${n(max)}) never filled`
      : full === last
        ? `not shown: the cache filled at the last sample`
        : `+${mib(last.rssAfterGcMiB - full.rssAfterGcMiB)} from ${n(full.waiting)} to ${n(last.waiting)} waiting once the cache was full (+${mib(full.rssAfterGcMiB - baseline.rssAfterGcMiB)} before)`;
  return {
    name: `consent workflows waiting for an answer, ${config.label}: worker resident memory (VmRSS after GC)`,
    baseline: { label: 'the same worker, warmed up, none waiting', mib: baseline.rssAfterGcMiB },
    subject: { label: `${n(last.waiting)} consent workflows waiting`, mib: last.rssAfterGcMiB },
    ratio: last.rssAfterGcMiB / baseline.rssAfterGcMiB,
    notes: [
      `worker    createWorker's options, maxCachedWorkflows ${n(max)}${config.maxCachedWorkflows ? '' : ' (the default for this heap)'}, maxConcurrentActivityTaskExecutions ${ACTIVITY_CONCURRENCY} (pool 10)`,
      ...(died ? [`DIED      ${died}`] : []),
      `bounded   ${bounded}`,
      ...(perCached
        ? [
            `per run   ≈ ${((1024 * (perCached.rssAfterGcMiB - baseline.rssAfterGcMiB)) / perCached.report.numCachedWorkflows).toFixed(0)} KiB RSS per cached workflow (at ${n(perCached.waiting)} waiting, ${n(perCached.report.numCachedWorkflows)} cached)`,
          ]
        : []),
      `steps     ${[baseline, ...samples].map((x) => `${n(x.waiting)}: ${mib(x.rssAfterGcMiB)} (${n(x.report.numCachedWorkflows)} cached)`).join(' · ')}`,
      `peak      VmHWM ${mib(peakMiB)} at the last sample; ${n(last.waiting)} waiting after ${seconds.toFixed(0)} s`,
    ],
  };
};

/**
 * The worker's resident memory with 10,000 consent workflows waiting for an answer (log channel, a 30-day
 * window, no reminder due) against the same worker, warmed up by consents that ran to expiry, with none
 * waiting: first with createWorker's defaults (the workflow cache at its default size), then with a cache of
 * 500 for contrast. Each worker is a child process whose VmRSS is read from /proc.
 */
export async function consentMemoryBenchmark(ctx: { databaseUrl: string; waiting?: number }): Promise<MemoryResult[]> {
  const waiting = ctx.waiting ?? 10_000;
  const cli = await resolveTemporalCli(process.env, () => {});
  if (!cli.path)
    throw new Error('the consent-memory bench needs a Temporal CLI (TEMPORAL_CLI_PATH, PATH, cache or go)');
  const server = await startDevServer({ cliPath: cli.path });
  const database = connect(ctx.databaseUrl);
  const keyFile = generateKeyFile();
  const keyring = parseKeyring(keyFile, 'bench');
  let connection: Connection | undefined;
  try {
    const perRun = WARM_UP + waiting;
    const [subjectIds, notice] = await Promise.all([
      seedSubjects(database.db, keyring, perRun * CONFIGURATIONS.length),
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
    const setup: Setup = {
      client: new Client({ connection, namespace: 'default', dataConverter: dataConverterFor(keyring) }),
      database,
      keyFile,
      noticeId: notice.id,
      temporalAddress: server.address,
      databaseUrl: ctx.databaseUrl,
    };
    const results: MemoryResult[] = [];
    for (const [i, config] of CONFIGURATIONS.entries())
      results.push(await measure(setup, config, subjectIds.slice(i * perRun, (i + 1) * perRun), waiting, i));
    return results;
  } finally {
    await connection?.close();
    await database.close();
    await server.stop();
  }
}
