import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { requestWorkflowId } from '../../domain/ids';
import type { RequestActor, RequestInput } from '../../domain/request';
import { requestClock, type RequestType } from '../../domain/request-clocks';
import { request } from '../../workflows';
import {
  extendUpdate,
  fulfilUpdate,
  pauseUpdate,
  refuseUpdate,
  requestStateQuery,
  resumeUpdate,
  verifyUpdate,
} from '../../workflows/request';
import { seedStaff } from '../helpers/incidents';
import { insertSubject } from '../helpers/notifications';
import { waitFor } from '../helpers/wait';
import type { Scenario, ScenarioContext } from './scenarios';

const settled = async (handle: WorkflowHandle): Promise<WorkflowHandle> => {
  await handle.result().catch(() => {});
  return handle;
};

const owner: RequestActor = { actor: 'user:recorded', role: 'owner', method: 'api' };

/** A subject with an address, an owner to remind, and a started request (windows in ms). */
const startRequest = async (
  ctx: ScenarioContext,
  type: RequestType,
  o: { jurisdiction?: string; windowMs?: number; verifyWithinMs?: number; verified?: boolean } = {},
) => {
  const db = ctx.database.db;
  await seedStaff(db, ctx.keyring, 'owner');
  const subjectId = await insertSubject(db, ctx.keyring, { locale: 'en', email: 'recorded@example.com' });
  const requestId = randomUUID();
  const input: RequestInput = {
    requestId,
    type,
    subjectId,
    channel: 'api',
    clock: requestClock(o.jurisdiction ?? 'CN', type, Date.now(), {
      windowMs: o.windowMs ?? 60_000,
      ...(o.verifyWithinMs ? { verifyWithinMs: o.verifyWithinMs } : {}),
      cnDefaultMs: 60_000,
    }),
    fields: [],
    purposes: type === 'restriction' ? ['marketing'] : [],
    ...(o.verified === false
      ? {}
      : { verification: { method: 'other', referenceTextId: randomUUID(), by: 'recorded' } }),
    filedBy: 'recorded',
    linkTtlMs: 60_000,
    destruction: { approvalWindowMs: 60_000, graceMs: 1_000 },
  };
  const handle = await ctx.client.workflow.start(request, {
    taskQueue: ctx.taskQueue,
    workflowId: requestWorkflowId(requestId),
    args: [input],
  });
  await waitFor(async () => ((await handle.query(requestStateQuery)).events >= 0 ? true : undefined), 'started');
  return handle;
};

export const requestScenarios: Record<string, Scenario> = {
  /** Verified at intake, fulfilled as a password export. */
  'access-exported': async (ctx) => {
    const handle = await startRequest(ctx, 'access');
    await handle.executeUpdate(fulfilUpdate, { args: [owner, { delivery: 'password' }] });
    return settled(handle);
  },
  /** Verified through the subject's link, then refused with a reason. */
  'verified-refused': async (ctx) => {
    const handle = await startRequest(ctx, 'access', { verified: false });
    await handle.executeUpdate(verifyUpdate, {
      args: [{ actor: 'subject:recorded', role: 'subject', method: 'page-link' }, { method: 'link' }],
    });
    await handle.executeUpdate(refuseUpdate, { args: [owner, { reasonTextId: randomUUID() }] });
    return settled(handle);
  },
  /** Never verified: expires with the reason. */
  expired: async (ctx) => settled(await startRequest(ctx, 'access', { verified: false, verifyWithinMs: 1_000 })),
  /** EU: extended, paused and resumed, reminded and overdue, then fulfilled as a restriction. */
  'extended-paused-overdue': async (ctx) => {
    const handle = await startRequest(ctx, 'restriction', { jurisdiction: 'EU', windowMs: 3_000 });
    await handle.executeUpdate(extendUpdate, { args: [owner, { byMs: 1_000, reasonTextId: randomUUID() }] });
    await handle.executeUpdate(pauseUpdate, { args: [owner, { reasonTextId: randomUUID() }] });
    await handle.executeUpdate(resumeUpdate, { args: [owner] });
    await waitFor(async () => ((await handle.query(requestStateQuery)).late ? true : undefined), 'overdue');
    await handle.executeUpdate(fulfilUpdate, { args: [owner, {}] });
    return settled(handle);
  },
  /** An erasure without a hold: the destruction is opened as a child. */
  'erasure-destruction': async (ctx) => {
    const handle = await startRequest(ctx, 'erasure');
    await handle.executeUpdate(fulfilUpdate, { args: [owner, {}] });
    return settled(handle);
  },
};
