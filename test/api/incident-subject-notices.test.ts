import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../activities/audit-verify';
import { campaignWorkflowId } from '../../domain/ids';
import { bearer, readJson, seedPrincipal, type Problem } from '../helpers/api';
import { insertSubjects } from '../helpers/campaign-subjects';
import { seedPolicy, seedStaff, user } from '../helpers/incidents';
import { createTestApp, createTestWorker, type TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';

interface SubjectNotices {
  campaignId: string;
  noticeId: string;
  status: string;
  total: number;
  targeted: number;
  notified: number;
  failed: number;
}
interface Incident {
  subjectNotices: SubjectNotices[];
  timeline: { type: string; actor: string; details: Record<string, unknown> }[];
}

let api: TestApp;
let worker: Worker;
let running: Promise<void>;
type Staff = Awaited<ReturnType<typeof seedStaff>>;
let owner: Staff;
let responder: Staff;

beforeAll(async () => {
  api = await createTestApp();
  worker = await createTestWorker(api);
  running = worker.run();
  owner = await seedStaff(api.database.db, api.keyring, 'owner');
  responder = await seedStaff(api.database.db, api.keyring, 'responder');
}, 120_000);
afterAll(async () => {
  worker?.shutdown();
  await running;
  await api?.close();
});

const text = (lang: string) => ({
  whatHappened: `${lang}: a customer export was readable on a public bucket for 3 days`,
  likelyConsequences: `${lang}: phishing messages using your name`,
  measuresTaken: `${lang}: the bucket was closed and access keys rotated`,
  whatYouCanDo: `${lang}: ignore messages asking for your password`,
});
const body = {
  texts: { 'zh-CN': text('zh'), en: text('en') },
  contact: { name: 'Example Credit Ltd', contact: 'privacy@example.com' },
  batchSize: 7,
};

const open = async (affected: Record<string, unknown>) => {
  const policy = await seedPolicy(api.database.db, [{ targets: [user(responder.userId)], waitSeconds: 60 }]);
  const res = await api.app.request('/v1/incidents', {
    method: 'POST',
    headers: bearer(owner.key),
    body: JSON.stringify({
      title: 'Customer export on a public bucket',
      severity: 'sev2',
      category: 'data-breach',
      personalData: true,
      escalationPolicyId: policy.id,
      affected,
    }),
  });
  expect(res.status).toBe(202);
  return (await readJson<{ id: string }>(res)).id;
};
const notify = (id: string, key: string, b: unknown, headers: Record<string, string> = {}) =>
  api.app.request(`/v1/incidents/${id}/subject-notices`, {
    method: 'POST',
    headers: { ...bearer(key), ...headers },
    body: JSON.stringify(b),
  });
const get = async (id: string) =>
  readJson<Incident>(await api.app.request(`/v1/incidents/${id}`, { headers: bearer(owner.key) }));
const recorded = (id: string) =>
  waitFor(async () => {
    const r = await api.database.sql`select 1 from incidents where id = ${id}`;
    return r.length > 0 || undefined;
  }, `incident ${id} recorded`);
const completed = (id: string, campaignId: string) =>
  waitFor(async () => {
    const p = (await get(id)).subjectNotices.find((n) => n.campaignId === campaignId);
    return p?.status === 'completed' ? p : undefined;
  }, `campaign ${campaignId} to complete`);

describe('breach notices to affected subjects', () => {
  it('sends each affected subject exactly one breach notice in its language, and no one else; the incident shows the progress', async () => {
    const db = api.database.db;
    const zh = await insertSubjects(db, api.keyring, 30, { locale: 'zh-CN' });
    const en = await insertSubjects(db, api.keyring, 20, { locale: 'en', jurisdiction: 'EU' });
    const bystanders = await insertSubjects(db, api.keyring, 15, { locale: 'en' });
    const affected = [...zh.ids, ...en.ids];
    const id = await open({ subjectIds: affected });
    await recorded(id);

    const res = await notify(id, responder.key, body, { 'Idempotency-Key': `breach-${id}` });
    expect(res.status).toBe(202);
    const started = await readJson<{ id: string; workflowId: string; noticeId: string }>(res);
    expect(started.workflowId).toBe(campaignWorkflowId(started.id));

    const done = await completed(id, started.id);
    expect(done).toMatchObject({ noticeId: started.noticeId, total: 50, targeted: 50, notified: 50, failed: 0 });

    const rows = await api.database.sql<{ subject_id: string; locale: string; template: string; n: number }[]>`
      select subject_id, locale, template, count(*)::int n from notifications
      where subject_id = any(${[...affected, ...bystanders.ids]}::uuid[])
      group by subject_id, locale, template`;
    expect(rows).toHaveLength(50);
    expect(rows.every((r) => r.template === 'breach-notice' && r.n === 1)).toBe(true);
    expect(new Set(rows.map((r) => r.subject_id))).toEqual(new Set(affected));
    const localeOf = new Map<string, string>([
      ...zh.ids.map((s): [string, string] => [s, 'zh-CN']),
      ...en.ids.map((s): [string, string] => [s, 'en']),
    ]);
    expect(rows.filter((r) => r.locale !== localeOf.get(r.subject_id))).toEqual([]);
    const wf = await api.database.sql`
      select distinct workflow_id from notifications where template = 'breach-notice'
        and subject_id = any(${affected}::uuid[])`;
    expect(wf).toEqual([{ workflow_id: started.workflowId }]);

    // The notice is stored once, immutable and hashed, with the breach-notice purpose.
    const [notice] = await api.database.sql<
      { purpose: string; texts: Record<string, { title: string; body: string }> }[]
    >`
      select purpose, texts from notices where id = ${started.noticeId}`;
    expect(notice!.purpose).toBe('breach-notice');
    expect(notice!.texts['zh-CN']!.body).toContain('zh: the bucket was closed');
    expect(notice!.texts.en!.body).toContain('Measures we have taken:\nen: the bucket was closed');

    // The same Idempotency-Key returns the same campaign and stores nothing new.
    const again = await notify(id, responder.key, body, { 'Idempotency-Key': `breach-${id}` });
    expect(again.status).toBe(200);
    expect((await readJson<{ id: string }>(again)).id).toBe(started.id);
    const reused = await notify(id, responder.key, { ...body, batchSize: 8 }, { 'Idempotency-Key': `breach-${id}` });
    expect(reused.status).toBe(409);
    const incident = await get(id);
    expect(incident.subjectNotices).toHaveLength(1);
    const entry = incident.timeline.filter((e) => e.type === 'subject-notices-started');
    expect(entry).toEqual([
      {
        type: 'subject-notices-started',
        actor: `user:${responder.userId}`,
        at: expect.any(String),
        details: {
          campaignId: started.id,
          noticeId: started.noticeId,
          textSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
        },
        text: null,
      },
    ]);
    const audit = await api.database.sql<{ action: string; workflow_id: string; run_id: string | null }[]>`
      select action, workflow_id, run_id from audit_log
      where target_type = 'incident' and target_id = ${id} and action = 'incident.subject-notices-started'`;
    expect(audit).toEqual([
      { action: 'incident.subject-notices-started', workflow_id: started.workflowId, run_id: expect.any(String) },
    ]);
    expect((await verifyAuditChain(api.database.db)).valid).toBe(true);
  });

  it('reaches the subjects of the import an incident names; an owner may send', async () => {
    const imported = await insertSubjects(api.database.db, api.keyring, 6, { locale: 'en' });
    await api.database.sql`
      insert into subject_imports (id, status, mode, requested_by, staged_bytes, total_lines)
      values (${imported.importId}, 'completed', 'insert', 'user:test', 0, 6)`;
    const id = await open({ importId: imported.importId });
    await recorded(id);
    const res = await notify(id, owner.key, body);
    expect(res.status).toBe(202);
    const { id: campaignId } = await readJson<{ id: string }>(res);
    expect(await completed(id, campaignId)).toMatchObject({ total: 6, notified: 6 });
    const rows = await api.database.sql<{ subject_id: string }[]>`
      select subject_id from notifications where workflow_id = ${campaignWorkflowId(campaignId)}`;
    expect(new Set(rows.map((r) => r.subject_id))).toEqual(new Set(imported.ids));
  });

  it('refuses a bad body naming the field, an unknown incident, and other roles', async () => {
    const id = await open({ subjectIds: [] });
    const { en, ...onlyZh } = body.texts;
    void en;
    const missing = await notify(id, responder.key, { ...body, texts: onlyZh });
    expect(missing.status).toBe(400);
    expect((await readJson<Problem>(missing)).fields?.map((f) => f.path)).toContain('texts.en');
    const empty = await notify(id, responder.key, {
      ...body,
      texts: { ...body.texts, en: { ...body.texts.en, measuresTaken: '' } },
    });
    expect(empty.status).toBe(400);
    expect((await readJson<Problem>(empty)).fields?.map((f) => f.path)).toContain('texts.en.measuresTaken');
    const extra = await notify(id, responder.key, { ...body, filter: { jurisdiction: 'CN' } });
    expect(extra.status).toBe(400);
    const unknown = await notify('7d2c1f9e-3a4b-4c5d-8e6f-0a1b2c3d4e5f', responder.key, body);
    expect(unknown.status).toBe(404);
    for (const role of ['auditor', 'approver'] as const) {
      const p = await seedPrincipal(api.database.db, role);
      expect((await notify(id, p.key, body)).status).toBe(403);
    }
    expect((await api.app.request(`/v1/incidents/${id}/subject-notices`, { method: 'POST' })).status).toBe(401);
    const none = await api.database
      .sql`select 1 from incident_timeline where incident_id = ${id} and type = 'subject-notices-started'`;
    expect(none).toEqual([]);
  });
});
