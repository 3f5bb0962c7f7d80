import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignActivities, campaignConsentId, campaignNoticeKey } from '../../activities/campaigns';
import { webhookChannel } from '../../activities/notify-channels';
import type { CampaignFilter } from '../../domain/campaign';
import { consentWorkflowId } from '../../domain/ids';
import { insertSubjects } from '../helpers/campaign-subjects';
import { insertNotice } from '../helpers/notifications';
import { createTestServices, type TestServices } from '../helpers/services';

let s: TestServices;
let noticeId: string;
let receiver: Server;
let url: string;
/** Idempotency keys as they arrive at the receiver, and keys it refuses (503) while listed. */
const arrived: string[] = [];
const refuse = new Set<string>();

beforeAll(async () => {
  s = await createTestServices();
  noticeId = await insertNotice(s.database.db);
  receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const key = String(req.headers['idempotency-key']);
      arrived.push(key);
      res.statusCode = refuse.has(key) ? 503 : 200;
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
});
afterAll(async () => {
  await new Promise((resolve) => receiver?.close(resolve));
  await s?.close();
});

/** env.run with the activity's result type. */
const run = <A extends unknown[], R>(env: MockActivityEnvironment, activity: (...args: A) => Promise<R>, ...args: A) =>
  env.run(activity, ...args) as Promise<R>;

const activities = () =>
  campaignActivities({
    ...s,
    db: s.database.db,
    channel: webhookChannel({ url, secret: 'x'.repeat(32), timeoutMs: 5_000, tries: 1 }),
  });

/** A campaign row over a fresh import's subjects, begun as the workflow begins it. */
const begin = async (env: MockActivityEnvironment, filter: CampaignFilter, purposeChanged: boolean) => {
  const campaignId = randomUUID();
  const consent = { respondWithinMs: 60_000, remindEveryMs: 30_000, maxReminders: 0, validForMs: 86_400_000 };
  const base = { campaignId, noticeId, purposeChanged, filter, requestedBy: 'user:test' };
  const begun = await run(env, activities().beginCampaign, {
    ...base,
    batchSize: 10,
    ...(purposeChanged ? { consent } : {}),
  });
  return {
    campaignId,
    begun,
    batch: (after: string) => ({
      ...base,
      purpose: begun.purpose,
      after,
      batchSize: 10,
      sendConcurrency: 4,
      ...(purposeChanged ? { consent } : {}),
    }),
  };
};

describe('campaign batch activity', () => {
  it('a batch that failed part-way is retried without sending any message twice', async () => {
    const { importId, ids } = await insertSubjects(s.database.db, s.keyring, 10);
    const env = new MockActivityEnvironment();
    const { campaignId, begun, batch } = await begin(env, { importId }, false);
    expect(begun).toMatchObject({ total: 10, purpose: 'marketing' });
    const sorted = [...ids].sort();
    const stuck = campaignNoticeKey(campaignId, sorted[6]!);
    refuse.add(stuck);
    const acts = activities();
    const failure = await run(env, acts.runCampaignBatch, batch('')).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect((failure as ApplicationFailure).nonRetryable).toBe(false);
    const [uncommitted] = await s.database
      .sql`select count(*)::int n from campaign_batches where campaign_id = ${campaignId}`;
    expect(uncommitted!.n).toBe(0);

    refuse.delete(stuck);
    const result = await run(env, acts.runCampaignBatch, batch(''));
    expect(result).toMatchObject({
      counts: { targeted: 10, notified: 10, consentsRequested: 0, failed: 0 },
      end: sorted[9],
      subjects: 10,
      done: false,
    });
    const mine = arrived.filter((k) => k.startsWith(`campaign-${campaignId}:`));
    expect(mine.filter((k) => k === stuck)).toHaveLength(2);
    expect(new Set(mine).size).toBe(10);
    expect(mine).toHaveLength(11);

    // Committed: the same batch again is the recorded one, and nothing is sent.
    expect(await run(env, acts.runCampaignBatch, batch(''))).toEqual(result);
    expect(arrived.filter((k) => k.startsWith(`campaign-${campaignId}:`))).toHaveLength(11);
    expect(await run(env, acts.runCampaignBatch, batch(result.end))).toMatchObject({ subjects: 0, done: true });
    const [row] = await s.database.sql`select targeted, notified, batches from campaigns where id = ${campaignId}`;
    expect(row).toEqual({ targeted: 10, notified: 10, batches: 1 });
  });

  it('a retried re-consent batch starts no consent workflow twice, not even one that has closed', async () => {
    const { importId, ids } = await insertSubjects(s.database.db, s.keyring, 5);
    // No worker polls this queue: the consent workflows stay as started, so only their IDs speak.
    const env = new MockActivityEnvironment(
      { taskQueue: s.testTemporal.taskQueue('no-worker') },
      { client: s.temporal },
    );
    const { campaignId, batch } = await begin(env, { importId }, true);
    const acts = activities();
    const first = await run(env, acts.runCampaignBatch, batch(''));
    expect(first.counts).toEqual({ targeted: 5, notified: 0, consentsRequested: 5, failed: 0 });
    const handles = ids.map((id) =>
      s.temporal.workflow.getHandle(consentWorkflowId(campaignConsentId(campaignId, id))),
    );
    const runs = await Promise.all(handles.map(async (h) => (await h.describe()).runId));
    await handles[0]!.terminate('closed before the retry');

    // As if the worker had died after starting them and before committing the batch.
    await s.database.sql`delete from campaign_targets where campaign_id = ${campaignId}`;
    await s.database.sql`delete from campaign_batches where campaign_id = ${campaignId}`;
    await s.database
      .sql`update campaigns set targeted = 0, consents_requested = 0, batches = 0 where id = ${campaignId}`;
    const again = await run(env, acts.runCampaignBatch, batch(''));
    expect(again.counts).toEqual(first.counts);
    const after = await Promise.all(handles.map((h) => h.describe()));
    expect(after.map((d) => d.runId)).toEqual(runs);
    expect(after[0]!.status.name).toBe('TERMINATED');
    const targets = await s.database.sql<{ subject_id: string; consent_id: string }[]>`
      select subject_id, consent_id from campaign_targets where campaign_id = ${campaignId}`;
    for (const t of targets) expect(t.consent_id).toBe(campaignConsentId(campaignId, t.subject_id));
    await Promise.all(handles.slice(1).map((h) => h.terminate('test over')));
  });
});
