import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { storeIncidentText } from '../../activities/incident-records';
import { incidentWorkflowId } from '../../domain/ids';
import type { IncidentActor, IncidentInput } from '../../domain/incident';
import { incident, systemIncident } from '../../workflows';
import {
  ackUpdate,
  gradeUpdate,
  incidentStateQuery,
  noteUpdate,
  postmortemUpdate,
  regulatorNotificationUpdate,
  resolveUpdate,
  statusUpdate,
} from '../../workflows/incident';
import { plainIncidentInput, seedPolicy, seedStaff, user } from '../helpers/incidents';
import { waitFor } from '../helpers/wait';
import type { Scenario, ScenarioContext } from './scenarios';

const settled = async (handle: WorkflowHandle): Promise<WorkflowHandle> => {
  await handle.result().catch(() => {});
  return handle;
};

/** A responder with a contact, a policy over them (waits in seconds), and a started incident. */
const startIncident = async (
  ctx: ScenarioContext,
  o: {
    levels?: number[];
    repeat?: number;
    reescalateAfterSeconds?: number;
    input?: Partial<IncidentInput>;
  } = {},
) => {
  const db = ctx.database.db;
  const responder = await seedStaff(db, ctx.keyring, 'responder');
  await seedStaff(db, ctx.keyring, 'owner');
  const policy = await seedPolicy(
    db,
    (o.levels ?? [60]).map((waitSeconds) => ({ targets: [user(responder.userId)], waitSeconds })),
    {
      repeat: o.repeat ?? 0,
      ...(o.reescalateAfterSeconds ? { reescalateAfterSeconds: o.reescalateAfterSeconds } : {}),
    },
  );
  const incidentId = randomUUID();
  const title = await storeIncidentText(db, { incidentId, kind: 'title', body: 'recorded', createdBy: 'recorded' });
  const text = async (kind: string) =>
    (await storeIncidentText(db, { incidentId, kind, body: kind, createdBy: 'recorded' })).id;
  const handle = await ctx.client.workflow.start(incident, {
    taskQueue: ctx.taskQueue,
    workflowId: incidentWorkflowId(incidentId),
    args: [
      plainIncidentInput(incidentId, title.id, policy, {
        severity: 'sev2',
        category: 'security',
        openedBy: 'recorded',
        ...o.input,
      }),
    ],
  });
  const by: IncidentActor = {
    actor: `user:${responder.userId}`,
    userId: responder.userId,
    role: 'responder',
    method: 'api',
  };
  const paged = (n: number) =>
    waitFor(async () => {
      const s = await handle.query(incidentStateQuery);
      return s.escalation && (s.escalation.level >= n || s.escalation.cycle > 1) ? s : undefined;
    }, `level ${n} paged`);
  return { handle, by, text, paged };
};

/** Works an acknowledged incident to closed. */
const close = async (s: Awaited<ReturnType<typeof startIncident>>) => {
  await s.handle.executeUpdate(resolveUpdate, { args: [s.by, { textId: await s.text('resolution-summary') }] });
  await s.handle.executeUpdate(postmortemUpdate, {
    args: [
      s.by,
      {
        impactTextId: await s.text('impact'),
        timelineTextId: await s.text('timeline'),
        rootCauseTextId: await s.text('root-cause'),
        actionsTextId: await s.text('actions'),
      },
    ],
  });
};

/** One per branch of workflows/incident.ts. */
export const incidentScenarios: Record<string, Scenario> = {
  /** Acknowledged at level 1, worked through every status with a note, resolved, postmortem: closed, the run ends. */
  lifecycle: async (ctx) => {
    const s = await startIncident(ctx);
    await s.paged(1);
    await s.handle.executeUpdate(ackUpdate, { args: [s.by] });
    await s.handle.executeUpdate(ackUpdate, { args: [s.by] });
    await s.handle.executeUpdate(statusUpdate, { args: [s.by, { status: 'investigating' }] });
    await s.handle.executeUpdate(noteUpdate, { args: [s.by, { textId: await s.text('note') }] });
    await s.handle.executeUpdate(statusUpdate, { args: [s.by, { status: 'contained' }] });
    await close(s);
    return settled(s.handle);
  },
  /** Nobody acknowledges: two levels, one repeat, the owners told, unacknowledged; then acknowledged and closed. */
  unacknowledged: async (ctx) => {
    const s = await startIncident(ctx, { levels: [1, 1], repeat: 1 });
    await waitFor(
      async () => ((await s.handle.query(incidentStateQuery)).status === 'unacknowledged' ? true : undefined),
      'the chain exhausted',
    );
    await s.handle.executeUpdate(ackUpdate, { args: [s.by] });
    await close(s);
    return settled(s.handle);
  },
  /** Acknowledged, then silent past the re-escalation time: round 2 pages level 1 again, acknowledged, closed. */
  reescalated: async (ctx) => {
    const s = await startIncident(ctx, { reescalateAfterSeconds: 1 });
    await s.paged(1);
    await s.handle.executeUpdate(ackUpdate, { args: [s.by] });
    await waitFor(async () => {
      const st = await s.handle.query(incidentStateQuery);
      return st.round === 2 && st.escalation?.round === 2 ? true : undefined;
    }, 'round 2 paged');
    await s.handle.executeUpdate(ackUpdate, { args: [s.by] });
    await s.handle.executeUpdate(statusUpdate, { args: [s.by, { status: 'investigating' }] });
    await close(s);
    return settled(s.handle);
  },
  /**
   * Regulator clocks: a GDPR window of 2 s runs out (reminders, overdue, late), the grade is confirmed as 较大 (the
   * CAC report clock joins), both are notified (the late one with reasons); after the postmortem the CAC summary
   * deadline keeps the run open until it is notified.
   */
  'regulator-clocks': async (ctx) => {
    const s = await startIncident(ctx, {
      input: {
        personalData: true,
        jurisdictions: ['EU', 'CN'],
        windows: { 'gdpr-art33': 2_000, 'cn-cac-report': 60_000, 'cn-cac-summary': 60_000 },
      },
    });
    await s.paged(1);
    await s.handle.executeUpdate(ackUpdate, { args: [s.by] });
    await waitFor(async () => ((await s.handle.query(incidentStateQuery)).late ? true : undefined), 'overdue');
    await s.handle.executeUpdate(gradeUpdate, { args: [s.by, { grade: 'relatively-major' }] });
    const notify = async (deadline: 'gdpr-art33' | 'cn-cac-report' | 'cn-cac-summary', reasons?: boolean) =>
      s.handle.executeUpdate(regulatorNotificationUpdate, {
        args: [
          s.by,
          {
            deadline,
            authority: 'recorded',
            reference: `ref-${deadline}`,
            notifiedAt: Date.now(),
            ...(reasons ? { reasonsTextId: await s.text('delay-reasons') } : {}),
          },
        ],
      });
    await notify('gdpr-art33', true);
    await notify('cn-cac-report');
    await s.handle.executeUpdate(statusUpdate, { args: [s.by, { status: 'investigating' }] });
    await close(s);
    await notify('cn-cac-summary');
    return settled(s.handle);
  },
};

/** The hook other processes use: an incident opened (and left running) for a failed restore test. */
export const systemIncidentScenarios: Record<string, Scenario> = {
  opened: async (ctx) => {
    const responder = await seedStaff(ctx.database.db, ctx.keyring, 'responder');
    await seedPolicy(ctx.database.db, [{ targets: [user(responder.userId)], waitSeconds: 60 }]);
    const handle = await ctx.client.workflow.start(systemIncident, {
      taskQueue: ctx.taskQueue,
      workflowId: `system-incident-${randomUUID()}`,
      args: [
        {
          kind: 'restore-test-failed',
          targetType: 'backup',
          targetId: randomUUID(),
          severity: 'sev2',
          category: 'backup',
          reason: 'recorded',
        },
      ],
    });
    const incidentId = await handle.result();
    if (incidentId) await ctx.client.workflow.getHandle(incidentWorkflowId(incidentId)).terminate('recorded');
    return handle;
  },
};
