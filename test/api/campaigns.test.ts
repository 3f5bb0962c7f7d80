import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignConsentId } from '../../activities/campaigns';
import { campaignWorkflowId, consentWorkflowId } from '../../domain/ids';
import type { Role } from '../../domain/roles';
import { bearer, readJson, seedPrincipal, type Problem } from '../helpers/api';
import { insertSubjects } from '../helpers/campaign-subjects';
import { insertNotice } from '../helpers/notifications';
import { createTestApp, createTestWorker, type TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';

interface Campaign {
  id: string;
  status: string;
  purposeChanged: boolean;
  filter: { jurisdiction?: string; importId?: string };
  rate: { limit: number | null; observed: number };
  totals: Record<
    | 'total'
    | 'targeted'
    | 'notified'
    | 'consentsRequested'
    | 'failed'
    | 'granted'
    | 'denied'
    | 'pending'
    | 'expired'
    | 'withdrawn',
    number
  >;
  report: { status: string; notified: number } | null;
}

let api: TestApp;
let worker: Worker;
let running: Promise<void>;
let owner: Awaited<ReturnType<typeof seedPrincipal>>;
let noticeId: string;

beforeAll(async () => {
  api = await createTestApp();
  worker = await createTestWorker(api);
  running = worker.run();
  owner = await seedPrincipal(api.database.db, 'owner');
  noticeId = await insertNotice(api.database.db);
}, 120_000);
afterAll(async () => {
  worker?.shutdown();
  await running;
  await api?.close();
});

const post = (path: string, body?: unknown, headers: Record<string, string> = {}, key = owner.key) =>
  api.app.request(path, {
    method: 'POST',
    headers: { ...bearer(key), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
const get = async (id: string) =>
  readJson<Campaign>(await api.app.request(`/v1/campaigns/${id}`, { headers: bearer(owner.key) }));
const launch = async (body: Record<string, unknown>) => {
  const res = await post('/v1/campaigns', body);
  expect(res.status).toBe(202);
  return readJson<{ id: string; workflowId: string }>(res);
};
const finished = (id: string) =>
  waitFor(async () => {
    const c = await get(id);
    return c.report ? c : undefined;
  }, `campaign ${id} to end`);
const reconsentTerms = { respondWithin: '60 seconds', remindEvery: '30 seconds', maxReminders: 0, validFor: 'P1D' };

describe('campaigns over the API', () => {
  it('a transfer-notice campaign over a jurisdiction and an import: totals, rate, report and audit', async () => {
    const { importId } = await insertSubjects(api.database.db, api.keyring, 120, { jurisdiction: 'EU', locale: 'en' });
    await insertSubjects(api.database.db, api.keyring, 30, { importId, jurisdiction: 'CN' });
    const started = await launch({
      noticeId,
      purposeChanged: false,
      filter: { jurisdiction: 'EU', importId: importId.toUpperCase() },
      batchSize: 50,
      ratePerSecond: 1_000,
    });
    expect(started.workflowId).toBe(campaignWorkflowId(started.id));
    const done = await finished(started.id);
    expect(done).toMatchObject({
      status: 'completed',
      purposeChanged: false,
      filter: { jurisdiction: 'EU', importId },
      rate: { limit: 1_000 },
      totals: {
        total: 120,
        targeted: 120,
        notified: 120,
        consentsRequested: 0,
        failed: 0,
        granted: 0,
        denied: 0,
        pending: 0,
        expired: 0,
      },
      report: { status: 'completed', notified: 120 },
    });
    expect(done.rate.observed).toBeGreaterThan(0);
    const sentTo = await api.database.sql<{ jurisdiction: string; n: number }[]>`
      select s.jurisdiction, count(*)::int n from notifications n join subjects s on s.id = n.subject_id
      where n.workflow_id = ${started.workflowId} group by s.jurisdiction`;
    expect(sentTo).toEqual([{ jurisdiction: 'EU', n: 120 }]);
    const audit = await api.database.sql<{ action: string; actor: string; api_key_id: string | null }[]>`
      select action, actor, api_key_id from audit_log where target_type = 'campaign' and target_id = ${started.id}
        and action in ('campaign.requested', 'campaign.started', 'campaign.completed') order by seq`;
    expect(audit).toEqual([
      { action: 'campaign.requested', actor: `user:${owner.userId}`, api_key_id: owner.keyId },
      { action: 'campaign.started', actor: `user:${owner.userId}`, api_key_id: null },
      { action: 'campaign.completed', actor: 'system', api_key_id: null },
    ]);
  });

  it('a re-consent campaign starts one consent-{uuid} workflow per subject, with the derived IDs; totals follow the answers', async () => {
    const { importId, ids } = await insertSubjects(api.database.db, api.keyring, 20);
    const { id } = await launch({
      noticeId,
      purposeChanged: true,
      filter: { importId },
      batchSize: 8,
      ...reconsentTerms,
    });
    const done = await finished(id);
    expect(done.totals).toMatchObject({ total: 20, targeted: 20, consentsRequested: 20, notified: 0, failed: 0 });
    const consentIds = ids.map((subjectId) => campaignConsentId(id, subjectId));
    const described = await Promise.all(
      consentIds.map((c) => api.temporal.workflow.getHandle(consentWorkflowId(c)).describe()),
    );
    expect(described.map((d) => d.type)).toEqual(consentIds.map(() => 'consent'));
    // Each consent records its request, under the derived ID, for its subject.
    const recorded = await waitFor(async () => {
      const rows = await api.database.sql<{ id: string; subject_id: string; status: string }[]>`
        select id, subject_id, status from consents where id = any(${`{${consentIds.join(',')}}`}::uuid[])`;
      return rows.length === 20 ? rows : undefined;
    }, 'the 20 consent requests recorded');
    for (const r of recorded) expect(r.id).toBe(campaignConsentId(id, r.subject_id));

    for (const c of consentIds.slice(0, 5))
      expect((await post(`/v1/consents/${c}/decisions`, { decision: 'grant' })).status).toBe(200);
    for (const c of consentIds.slice(5, 8))
      expect((await post(`/v1/consents/${c}/decisions`, { decision: 'deny' })).status).toBe(200);
    expect((await post(`/v1/consents/${consentIds[0]}/withdraw`)).status).toBe(200);
    expect((await get(id)).totals).toMatchObject({
      consentsRequested: 20,
      granted: 4,
      withdrawn: 1,
      denied: 3,
      pending: 12,
      expired: 0,
    });
    await Promise.all(
      consentIds.map((c) =>
        api.temporal.workflow
          .getHandle(consentWorkflowId(c))
          .terminate('test over')
          .catch(() => {}),
      ),
    );
  });

  it('pause, resume and cancel through the API, audited with the user; a finished campaign answers 409', async () => {
    const { importId } = await insertSubjects(api.database.db, api.keyring, 1_000);
    const { id, workflowId } = await launch({
      noticeId,
      purposeChanged: false,
      filter: { importId },
      batchSize: 25,
      ratePerSecond: 250,
    });
    const sent = async () => {
      const [row] = await api.database.sql<{ n: number }[]>`
        select count(*)::int n from notifications where workflow_id = ${workflowId}`;
      return row!.n;
    };
    await waitFor(async () => ((await sent()) >= 50 ? true : undefined), 'the first batches');
    const paused = await post(`/v1/campaigns/${id}/pause`);
    expect(paused.status).toBe(200);
    const progress = await readJson<{ status: string; counts: { targeted: number } }>(paused);
    expect(progress.status).toBe('paused');
    expect(await sent()).toBe(progress.counts.targeted);
    expect((await get(id)).status).toBe('paused');
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await sent()).toBe(progress.counts.targeted);

    expect((await readJson<{ status: string }>(await post(`/v1/campaigns/${id}/resume`))).status).toBe('running');
    await waitFor(async () => ((await sent()) > progress.counts.targeted ? true : undefined), 'sending again');
    const cancelled = await post(`/v1/campaigns/${id}/cancel`);
    expect(cancelled.status).toBe(200);
    const report = await readJson<{ status: string; targeted: number; notified: number }>(cancelled);
    expect(report).toMatchObject({ status: 'cancelled' });
    expect(report.targeted).toBeLessThan(1_000);
    expect(await sent()).toBe(report.targeted);
    expect(await get(id)).toMatchObject({ status: 'cancelled', totals: { targeted: report.targeted } });

    for (const action of ['pause', 'resume', 'cancel']) {
      const res = await post(`/v1/campaigns/${id}/${action}`);
      expect(res.status).toBe(409);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect((await readJson<Problem>(res)).code).toBe('campaign-cancelled');
    }
    const audit = await api.database.sql<{ action: string; actor: string; api_key_id: string; run_id: string }[]>`
      select action, actor, api_key_id, run_id from audit_log
      where target_id = ${id} and action like '%-requested' and action <> 'campaign.requested' order by seq`;
    expect(audit.map((a) => a.action)).toEqual([
      'campaign.pause-requested',
      'campaign.resume-requested',
      'campaign.cancel-requested',
    ]);
    for (const a of audit) expect(a).toMatchObject({ actor: `user:${owner.userId}`, api_key_id: owner.keyId });
    expect(audit.every((a) => a.run_id)).toBe(true);
  });

  it('honours Idempotency-Key: the same request returns the first campaign, another request is 409', async () => {
    const { importId } = await insertSubjects(api.database.db, api.keyring, 3);
    const body = { noticeId, purposeChanged: false, filter: { importId } };
    const first = await post('/v1/campaigns', body, { 'idempotency-key': `campaign-${importId}` });
    expect(first.status).toBe(202);
    const { id } = await readJson<{ id: string }>(first);
    const again = await post('/v1/campaigns', body, { 'idempotency-key': `campaign-${importId}` });
    expect(again.status).toBe(200);
    expect((await readJson<{ id: string }>(again)).id).toBe(id);
    const other = await post('/v1/campaigns', { ...body, batchSize: 2 }, { 'idempotency-key': `campaign-${importId}` });
    expect(other.status).toBe(409);
    expect((await readJson<Problem>(other)).code).toBe('idempotency-key-reused');
    await finished(id);
    const [{ n }] = (await api.database.sql`
      select count(*)::int n from campaigns where import_id = ${importId}`) as unknown as [{ n: number }];
    expect(n).toBe(1);
  });

  it('refuses bad input with 400 naming the field, and an unknown notice or campaign with 404', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ noticeId, purposeChanged: false, batchSize: 0 }, 'batchSize'],
      [{ noticeId, purposeChanged: false, ratePerSecond: -1 }, 'ratePerSecond'],
      [{ noticeId, purposeChanged: false, filter: { jurisdiction: 'China' } }, 'filter.jurisdiction'],
      [{ noticeId, purposeChanged: false, filter: { importId: 'abc' } }, 'filter.importId'],
      [{ noticeId, purposeChanged: true, ...reconsentTerms, respondWithin: 'soon' }, 'respondWithin'],
      [{ noticeId, purposeChanged: true, ...reconsentTerms, validFor: undefined }, 'validFor'],
      [{ noticeId, purposeChanged: false, maxReminders: 1 }, 'maxReminders'],
      [{ noticeId, purposeChanged: 'yes' }, 'purposeChanged'],
      [{ purposeChanged: false }, 'noticeId'],
      [{ noticeId, purposeChanged: false, extra: 1 }, ''],
    ];
    for (const [body, field] of cases) {
      const res = await post('/v1/campaigns', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      const problem = await readJson<Problem>(res);
      if (field)
        expect(
          problem.fields?.map((f) => f.path),
          JSON.stringify(body),
        ).toContain(field);
    }
    const missing = await post('/v1/campaigns', { noticeId: crypto.randomUUID(), purposeChanged: false });
    expect(missing.status).toBe(404);
    const unknown = crypto.randomUUID();
    expect((await api.app.request(`/v1/campaigns/${unknown}`, { headers: bearer(owner.key) })).status).toBe(404);
    expect((await post(`/v1/campaigns/${unknown}/pause`)).status).toBe(404);
  });

  it('lets only an owner start, read, pause, resume or cancel a campaign', async () => {
    const id = crypto.randomUUID();
    const calls: [string, string][] = [
      ['POST', '/v1/campaigns'],
      ['GET', `/v1/campaigns/${id}`],
      ['POST', `/v1/campaigns/${id}/pause`],
      ['POST', `/v1/campaigns/${id}/resume`],
      ['POST', `/v1/campaigns/${id}/cancel`],
    ];
    for (const role of ['admin', 'auditor', 'responder', 'approver'] as Role[]) {
      const { key } = await seedPrincipal(api.database.db, role);
      for (const [method, path] of calls) {
        const res = await api.app.request(path, {
          method,
          headers: bearer(key),
          body: method === 'POST' ? JSON.stringify({ noticeId, purposeChanged: false }) : undefined,
        });
        expect(res.status, `${role} ${method} ${path}`).toBe(403);
      }
    }
    for (const [method, path] of calls) expect((await api.app.request(path, { method })).status).toBe(401);
    const [{ n }] = (await api.database.sql`
      select count(*)::int n from audit_log where target_id = ${id}`) as unknown as [{ n: number }];
    expect(n).toBe(0);
  });
});
