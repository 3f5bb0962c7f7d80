import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { tsToMs } from '@temporalio/common/lib/time';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { and, eq, inArray } from 'drizzle-orm';
import { storeIncidentText } from '../activities/incident-records';
import { createPolicy, frozenPolicy } from '../activities/oncall';
import { staffMessenger } from '../activities/staff-messages';
import { setUserContact } from '../activities/user-contacts';
import { createUser } from '../activities/users';
import { connect, type Database } from '../db/client';
import { incidentPages, incidents, notifications } from '../db/schema';
import { EscalationPolicyRequest } from '../domain/escalation';
import { incidentWorkflowId } from '../domain/ids';
import { DEFAULT_GRADE_THRESHOLDS } from '../domain/regulatory-clocks';
import { loadConfig } from '../runtime/config';
import { generateKeyFile, parseKeyring } from '../runtime/keyring';
import { createLogger } from '../runtime/logger';
import { resolveTemporalCli } from '../runtime/temporal-cli';
import { startDevServer } from '../runtime/temporal-server';
import { incident } from '../workflows';
import { startBenchWorker, type BenchWorker } from './worker';
import { compare, measure, type ScenarioResult } from './harness';

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const summary = (label: string, ms: number[]) => {
  const s = [...ms].sort((a, b) => a - b);
  return `incidents: ${label}: p50 ${percentile(s, 50)} ms, p99 ${percentile(s, 99)} ms, max ${s.at(-1)} ms (n=${s.length})`;
};

/**
 * `count` incidents opened at once, each with a two-level policy of `waitMs` acknowledgement timeouts and nobody
 * acknowledging, on a dev server with a real worker (createWorker, the log channel). Reported: the lateness of
 * each escalation against its configured time — level 2 sent vs level 1's page time + wait, and the owners' notice
 * vs level 2's page time + wait — as p50/p99; and pages sent per second through the workflows against the same
 * number of messages sent straight through the staff outbox (no workflow, no escalation) in the same run.
 */
export async function incidentBenchmark(ctx: {
  databaseUrl: string;
  count?: number;
  waitMs?: number;
}): Promise<ScenarioResult> {
  const count = ctx.count ?? 200;
  const waitMs = ctx.waitMs ?? 2_000;
  const work = await mkdtemp(join(tmpdir(), 'custodian-bench-incidents-'));
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
  if (!cli.path) throw new Error('the incident benchmark needs a Temporal CLI (TEMPORAL_CLI_PATH, PATH, cache or go)');
  const server = await startDevServer({ cliPath: cli.path });
  let bench: BenchWorker | undefined;
  try {
    const seed = { actor: 'bench' };
    const staff = async (role: 'owner' | 'responder') => {
      const user = await createUser(db, { name: `bench ${role}`, role }, seed);
      await setUserContact(db, keyring, user.id, { address: `${user.id}@ops.example`, locale: 'en' }, seed);
      return user.id;
    };
    const [a, b] = [await staff('responder'), await staff('responder')];
    await staff('owner');
    const seconds = `${waitMs / 1000} seconds`;
    const policy = await createPolicy(
      db,
      EscalationPolicyRequest.parse({
        name: 'bench',
        levels: [
          { targets: [{ type: 'user', id: a }], wait: seconds },
          { targets: [{ type: 'user', id: b }], wait: seconds },
        ],
      }),
      seed,
    );

    // Baseline: the same number of messages straight through the outbox, as many at once as the sender allows.
    const messages = count * 2;
    const send = staffMessenger({ db, keyring, config, logger: createLogger('silent'), clock: () => new Date() });
    const env = new MockActivityEnvironment();
    const baseline = await measure(`${messages} staff messages, outbox only`, messages, () =>
      env.run(() =>
        Promise.all(
          Array.from({ length: messages }, (_, i) =>
            send({
              idempotencyKey: `bench-baseline:${i}`,
              template: 'incident-page',
              userId: i % 2 ? a : b,
              about: { type: 'incident', id: 'bench' },
              params: {
                incidentId: 'bench',
                title: 'bench',
                severity: 'sev1',
                status: 'triggered',
                level: 1,
                cycle: 1,
              },
            }),
          ),
        ),
      ),
    );

    bench = await startBenchWorker({
      address: server.address,
      name: 'incidents',
      database,
      keyring,
      stagingDir: join(work, 'staging'),
      config,
    });
    const { client, worker, taskQueue } = bench;
    const ids = Array.from({ length: count }, () => randomUUID());
    const titles = await Promise.all(
      ids.map((id) => storeIncidentText(db, { incidentId: id, kind: 'title', body: 'bench', createdBy: 'bench' })),
    );
    const frozen = frozenPolicy(policy);

    const subject = await worker.runUntil(async () => {
      const started = performance.now();
      await Promise.all(
        ids.map((incidentId, i) =>
          client.workflow.start(incident, {
            taskQueue,
            workflowId: incidentWorkflowId(incidentId),
            args: [
              {
                incidentId,
                titleTextId: titles[i]!.id,
                severity: 'sev1',
                category: 'availability',
                awareAt: Date.now(),
                personalData: false,
                jurisdictions: [],
                affected: { subjectIds: [] },
                policy: frozen,
                cnOperator: 'other',
                gradeThresholds: DEFAULT_GRADE_THRESHOLDS,
                windows: {},
                postmortemWithinMs: 86_400_000,
                openedBy: 'bench',
                ackLinkTtlMs: 3_600_000,
              },
            ],
          }),
        ),
      );
      for (;;) {
        const rows = await db
          .select({ id: incidents.id })
          .from(incidents)
          .where(and(inArray(incidents.id, ids), eq(incidents.status, 'unacknowledged')));
        const told = await db
          .select({ key: notifications.idempotencyKey })
          .from(notifications)
          .where(and(eq(notifications.template, 'incident-unacknowledged'), eq(notifications.status, 'sent')));
        if (rows.length === count && told.length >= count) break;
        if (performance.now() - started > 10 * 60_000) throw new Error('incidents did not all run out in 10 minutes');
        await new Promise((r) => setTimeout(r, 200));
      }
      return performance.now() - started;
    });

    const pages = await db.select().from(incidentPages).where(inArray(incidentPages.incidentId, ids));
    const told = await db
      .select()
      .from(notifications)
      .where(and(eq(notifications.template, 'incident-unacknowledged'), eq(notifications.status, 'sent')));
    const byIncident = new Map<string, { l1?: (typeof pages)[number]; l2?: (typeof pages)[number] }>();
    for (const p of pages) byIncident.set(p.incidentId, { ...byIncident.get(p.incidentId), [`l${p.level}`]: p });
    const escalation: number[] = [];
    const decision: number[] = [];
    for (const { l1, l2 } of byIncident.values()) {
      escalation.push(l2!.sentAt!.getTime() - (l1!.pagedAt.getTime() + waitMs));
      decision.push(l2!.pagedAt.getTime() - (l1!.pagedAt.getTime() + waitMs));
    }
    const ownerNotice: number[] = told.map((m) => {
      const incidentId = m.idempotencyKey.slice('incident-'.length, 'incident-'.length + 36);
      return m.sentAt!.getTime() - (byIncident.get(incidentId)!.l2!.pagedAt.getTime() + waitMs);
    });
    // Throughput of the level-2 burst: every incident pages at once when its level 1 times out.
    const burst = pages.filter((p) => p.level === 2).map((p) => p.sentAt!.getTime());
    const pagesPerSecond = (burst.length * 1000) / Math.max(1, Math.max(...burst) - Math.min(...burst));
    // Where a late escalation loses its time, from the histories: the service firing the timer late, or the task
    // waiting for the worker to pick it up once fired.
    const firedLate: number[] = [];
    const pickedUp: number[] = [];
    for (const incidentId of ids) {
      const events = (await client.workflow.getHandle(incidentWorkflowId(incidentId)).fetchHistory()).events ?? [];
      const byId = new Map(events.map((e) => [Number(e.eventId), e]));
      for (const [i, e] of events.entries()) {
        const fired = e.timerFiredEventAttributes;
        if (!fired) continue;
        const startedEvent = byId.get(Number(fired.startedEventId));
        const due =
          tsToMs(startedEvent?.eventTime) + tsToMs(startedEvent?.timerStartedEventAttributes?.startToFireTimeout);
        firedLate.push(tsToMs(e.eventTime) - due);
        const task = events.slice(i + 1).find((x) => x.workflowTaskStartedEventAttributes);
        if (task) pickedUp.push(tsToMs(task.eventTime) - tsToMs(e.eventTime));
      }
    }
    console.log(summary('acknowledgement timers fired after their time (service)', firedLate));
    console.log(summary('fired timer → workflow task started (worker pickup)', pickedUp));
    console.log(summary('level 2 sent after its time', escalation));
    console.log(summary('level 2 decided after its time (timer → workflow task)', decision));
    console.log(summary('owners told after their time', ownerNotice));
    console.log(
      `incidents: ${count} incidents, ${pages.length} pages + ${told.length} owner notices in ${(subject / 1000).toFixed(1)} s`,
    );
    return compare(
      `incidents (${count} at once, ${waitMs / 1000} s acknowledgement timeouts, nobody acknowledging)`,
      baseline,
      { label: 'level-2 pages through incident workflows', perSecond: pagesPerSecond },
    );
  } finally {
    await bench?.close();
    await server.stop();
    await database.close();
    await rm(work, { recursive: true, force: true });
  }
}
