import type { Worker } from '@temporalio/worker';
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../activities/audit-verify';
import { incidentAckToken } from '../../activities/incidents';
import { addOverride } from '../../activities/oncall';
import { auditLog, incidentPages } from '../../db/schema';
import { incidentWorkflowId } from '../../domain/ids';
import { bearer, readJson, type Problem } from '../helpers/api';
import { pagesOf, seedPolicy, seedSchedule, seedStaff, staffMessages, user } from '../helpers/incidents';
import { createTestApp, createTestWorker, type TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';

interface Incident {
  id: string;
  resolutionSummary: string | null;
  postmortem: Record<string, string | null> | null;
  status: string;
  late: boolean;
  acknowledgedBy: string | null;
  escalation: { round: number; cycle: number; level: number } | null;
  deadlines: { kind: string; dueAt: string; timeLeftMs: number | null; reminders: string[]; late: boolean }[];
  pages: { userId: string; cycle: number; level: number; via: string; status: string; pagedAt: string }[];
  timeline: { type: string; actor: string; details: Record<string, unknown>; text: string | null }[];
  regulatorNotifications: { deadline: string; late: boolean; reasonsForDelay: string | null }[];
}

let api: TestApp;
let worker: Worker;
let running: Promise<void>;
type Staff = Awaited<ReturnType<typeof seedStaff>>;
let owner: Staff;
let a: Staff;
let b: Staff;
let c: Staff;

beforeAll(async () => {
  api = await createTestApp();
  worker = await createTestWorker(api);
  running = worker.run();
  const db = api.database.db;
  owner = await seedStaff(db, api.keyring, 'owner');
  const responders = await Promise.all([1, 2, 3].map((n) => seedStaff(db, api.keyring, 'responder', `responder ${n}`)));
  [a, b, c] = responders as [Staff, Staff, Staff];
}, 120_000);
afterAll(async () => {
  worker?.shutdown();
  await running;
  await api?.close();
});

const open = async (policyId: string, o: Record<string, unknown> = {}) => {
  const res = await api.app.request('/v1/incidents', {
    method: 'POST',
    headers: bearer(owner.key),
    body: JSON.stringify({
      title: 'Customer export found on a public bucket',
      severity: 'sev1',
      category: 'data-breach',
      escalationPolicyId: policyId,
      ...o,
    }),
  });
  expect(res.status).toBe(202);
  return (await readJson<{ id: string }>(res)).id;
};
const get = async (id: string, key = owner.key) =>
  readJson<Incident>(await api.app.request(`/v1/incidents/${id}`, { headers: bearer(key) }));
const post = (id: string, path: string, key: string, body?: unknown) =>
  api.app.request(`/v1/incidents/${id}/${path}`, {
    method: 'POST',
    headers: bearer(key),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
const statusIs = (id: string, status: string) =>
  waitFor(async () => {
    const i = await get(id).catch(() => undefined);
    return i?.status === status ? i : undefined;
  }, `incident ${id} ${status}`);
const pageCount = (id: string, n: number) =>
  waitFor(async () => {
    const pages = await pagesOf(api.database.db, id);
    return pages.filter((p) => p.status === 'sent').length >= n ? pages : undefined;
  }, `${n} pages of ${id}`);
const problem = async (res: Response, status: number, code?: string) => {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  const p = await readJson<Problem>(res);
  if (code) expect(p.code).toBe(code);
  return p;
};

describe('escalation', () => {
  it('pages level 2 at level 1’s timeout, repeats the chain, then tells the owners and marks it unacknowledged', async () => {
    const policy = await seedPolicy(
      api.database.db,
      [
        { targets: [user(a.userId)], waitSeconds: 2 },
        { targets: [user(b.userId)], waitSeconds: 2 },
      ],
      { repeat: 1 },
    );
    const id = await open(policy.id);
    const unacked = await statusIs(id, 'unacknowledged');
    const pages = await pagesOf(api.database.db, id);
    expect(pages.map((p) => [p.cycle, p.level, p.userId])).toEqual([
      [1, 1, a.userId],
      [1, 2, b.userId],
      [2, 1, a.userId],
      [2, 2, b.userId],
    ]);
    expect(pages.every((p) => p.status === 'sent')).toBe(true);
    // Each level is paged at the previous one's timeout (2 s): decided exactly then, sent within a second of it.
    for (let i = 1; i < pages.length; i++) {
      const due = pages[i - 1]!.pagedAt.getTime() + 2_000;
      expect(pages[i]!.pagedAt.getTime()).toBeGreaterThanOrEqual(due);
      expect(pages[i]!.sentAt!.getTime() - due).toBeLessThan(1_000);
    }
    const told = await waitFor(async () => {
      const sent = await staffMessages(api.database.db, id, 'incident-unacknowledged');
      return sent.some((m) => m.recipientRef === `user:${owner.userId}` && m.status === 'sent') ? sent : undefined;
    }, 'the owners told');
    expect(told[0]!.createdAt.getTime()).toBeGreaterThanOrEqual(pages.at(-1)!.pagedAt.getTime() + 2_000);
    expect(unacked.timeline.map((e) => e.type)).toEqual([
      'triggered',
      'paged',
      'paged',
      'paged',
      'paged',
      'unacknowledged',
    ]);
    // The chain is exhausted: no further page, but an acknowledgement is still taken.
    const ack = await post(id, 'ack', a.key);
    expect(ack.status).toBe(200);
    expect((await get(id)).status).toBe('acknowledged');
    expect(await pagesOf(api.database.db, id)).toHaveLength(4);
  });

  it('an acknowledgement stops the chain at once; a second is harmless; a non-responder gets 403', async () => {
    const policy = await seedPolicy(api.database.db, [
      { targets: [user(a.userId)], waitSeconds: 3 },
      { targets: [user(b.userId)], waitSeconds: 3 },
    ]);
    const id = await open(policy.id);
    await pageCount(id, 1);
    await problem(await post(id, 'ack', owner.key), 403);
    const first = await post(id, 'ack', a.key);
    expect(first.status).toBe(200);
    expect(await readJson(first)).toMatchObject({
      status: 'acknowledged',
      acknowledgedBy: `user:${a.userId}`,
      acknowledged: true,
    });
    const second = await post(id, 'ack', b.key);
    expect(second.status).toBe(200);
    expect(await readJson(second)).toMatchObject({ acknowledgedBy: `user:${a.userId}`, acknowledged: false });
    // A negative claim needs time: well past level 1's timeout, level 2 was never paged.
    await new Promise((r) => setTimeout(r, 4_000));
    const after = await get(id);
    expect(after.pages.map((p) => p.level)).toEqual([1]);
    expect(after.timeline.filter((e) => e.type === 'acknowledged')).toHaveLength(1);
    const acks = await api.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.targetId, id), eq(auditLog.action, 'incident.acknowledged')));
    expect(acks).toHaveLength(1);
    expect(acks[0]).toMatchObject({ actor: `user:${a.userId}`, apiKeyId: a.keyId, workflowId: incidentWorkflowId(id) });
  });

  it('a schedule target pages whoever is on call at that moment, overrides included', async () => {
    const schedule = await seedSchedule(api.database.db, {
      responders: [a.userId, b.userId],
      // A daily rotation whose current shift (a's) began an hour ago.
      timeZone: 'UTC',
      start: new Date(Date.now() - 3_600_000).toISOString().slice(0, 16),
      handoff: { every: 2, unit: 'days' },
    });
    const policy = await seedPolicy(api.database.db, [
      { targets: [{ type: 'schedule', id: schedule.id }], waitSeconds: 2 },
      { targets: [{ type: 'schedule', id: schedule.id }], waitSeconds: 60 },
    ]);
    const now = Date.now();
    // c covers from level 2's page on: level 1 goes to the rotation (a), level 2 to the override (c).
    await addOverride(
      api.database.db,
      schedule.id,
      { userId: c.userId, from: now + 1_000, to: now + 600_000 },
      { actor: 'test:seed' },
    );
    const id = await open(policy.id);
    const pages = await pageCount(id, 2);
    expect(pages.map((p) => [p.level, p.userId, p.via, p.scheduleId])).toEqual([
      [1, a.userId, 'schedule', schedule.id],
      [2, c.userId, 'schedule', schedule.id],
    ]);
    expect((await post(id, 'ack', c.key)).status).toBe(200);
  });
});

describe('regulator clocks', () => {
  it('reminds at 50/75/90 % in order, escalates when overdue and marks the incident late; late without reasons is 400', async () => {
    const policy = await seedPolicy(api.database.db, [{ targets: [user(a.userId)], waitSeconds: 60 }]);
    const id = await open(policy.id, {
      personalData: true,
      jurisdictions: ['EU', 'CN'],
      regulatory: { windows: { 'gdpr-art33': '10 seconds' } },
    });
    await pageCount(id, 1);
    expect((await post(id, 'ack', a.key)).status).toBe(200);
    const late = await waitFor(async () => {
      const i = await get(id);
      return i.late ? i : undefined;
    }, 'the GDPR deadline overdue');
    const clockEvents = late.timeline.filter((e) => e.type.startsWith('deadline-')).map((e) => e.details.mark);
    expect(clockEvents).toEqual(['reminder-50', 'reminder-75', 'reminder-90', 'overdue']);
    const gdpr = late.deadlines.find((d) => d.kind === 'gdpr-art33')!;
    expect(gdpr).toMatchObject({ late: true, reminders: ['reminder-50', 'reminder-75', 'reminder-90', 'overdue'] });
    expect(gdpr.timeLeftMs).toBeLessThan(0);
    // PIPL Art. 57 ("immediately") is listed with no clock; no CAC report below 较大.
    expect(late.deadlines.map((d) => d.kind).sort()).toEqual(['gdpr-art33', 'pipl-art57']);
    const reminders = await staffMessages(api.database.db, id, 'deadline-reminder');
    const overdue = await staffMessages(api.database.db, id, 'deadline-overdue');
    // Each reminder to the owner and the acknowledging responder; in order; the overdue notice after them.
    expect(new Set(reminders.map((m) => m.recipientRef))).toEqual(
      new Set([`user:${owner.userId}`, `user:${a.userId}`]),
    );
    expect(reminders).toHaveLength(6);
    expect(overdue).toHaveLength(2);
    expect(overdue[0]!.createdAt.getTime()).toBeGreaterThanOrEqual(reminders.at(-1)!.createdAt.getTime());

    const body = { deadline: 'gdpr-art33', authority: 'CNIL', reference: 'CNIL-2025-0042' };
    const refused = await problem(await post(id, 'regulator-notifications', a.key, body), 400);
    expect(refused.fields).toEqual([{ path: 'reasonsForDelay', message: 'required: the notification is late' }]);
    const unknown = await problem(
      await post(id, 'regulator-notifications', a.key, { ...body, deadline: 'cn-cac-report' }),
      400,
    );
    expect(unknown.fields?.[0]?.path).toBe('deadline');
    const ok = await post(id, 'regulator-notifications', a.key, { ...body, reasonsForDelay: 'forensics took longer' });
    expect(ok.status).toBe(200);
    expect(await readJson(ok)).toMatchObject({ late: true });
    const after = await get(id);
    expect(after.regulatorNotifications).toEqual([
      expect.objectContaining({ deadline: 'gdpr-art33', late: true, reasonsForDelay: 'forensics took longer' }),
    ]);
    // The audit carries the text's hash, never the text.
    const [audit] = await api.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.targetId, id), eq(auditLog.action, 'incident.regulator-notified')));
    expect(audit!.details).toMatchObject({ deadline: 'gdpr-art33', late: true });
    expect(JSON.stringify(audit!.details)).not.toContain('forensics');
  });

  it('a confirmed grade of 较大 adds the CAC report clock (4 h for other operators) from awareness', async () => {
    const policy = await seedPolicy(api.database.db, [{ targets: [user(a.userId)], waitSeconds: 60 }]);
    const awareAt = new Date(Date.now() - 3_600_000).toISOString();
    const id = await open(policy.id, {
      personalData: true,
      jurisdictions: ['CN'],
      awareAt,
      affected: { estimatedCount: 5 },
    });
    await pageCount(id, 1);
    expect((await post(id, 'ack', a.key)).status).toBe(200);
    expect((await get(id)).deadlines.map((d) => d.kind)).toEqual(['pipl-art57']);
    expect((await post(id, 'grade', a.key, { grade: 'relatively-major' })).status).toBe(200);
    const graded = await get(id);
    const cac = graded.deadlines.find((d) => d.kind === 'cn-cac-report')!;
    expect(Date.parse(cac.dueAt)).toBe(Date.parse(awareAt) + 4 * 3_600_000);
    // An hour in: the 50 % reminder is not due yet, the window has about three hours left.
    expect(cac.timeLeftMs).toBeGreaterThan(2.9 * 3_600_000);
  });
});

describe('lifecycle', () => {
  it('runs to closed; every step is on the timeline and in the audit chain; illegal moves are 409', async () => {
    const policy = await seedPolicy(api.database.db, [{ targets: [user(a.userId)], waitSeconds: 60 }]);
    const id = await open(policy.id, { postmortemWithin: '60 seconds' });
    await pageCount(id, 1);
    await problem(await post(id, 'status', a.key, { status: 'investigating' }), 409, 'incident-triggered');
    await problem(await post(id, 'resolve', a.key, { summary: 'fixed' }), 409, 'incident-triggered');
    await problem(await post(id, 'status', a.key, { status: 'closed' }), 400);
    expect((await post(id, 'ack', a.key)).status).toBe(200);
    expect((await post(id, 'status', a.key, { status: 'investigating', note: 'looking at bucket ACLs' })).status).toBe(
      200,
    );
    await problem(await post(id, 'status', a.key, { status: 'investigating' }), 409, 'incident-investigating');
    expect((await post(id, 'notes', b.key, { text: 'bucket made private 10:42' })).status).toBe(200);
    expect((await post(id, 'status', a.key, { status: 'contained' })).status).toBe(200);
    await problem(
      await post(id, 'postmortem', a.key, { impact: 'i', timeline: 't', rootCause: 'r', actions: 'a' }),
      409,
      'incident-contained',
    );
    expect((await post(id, 'resolve', a.key, { summary: 'access revoked, keys rotated' })).status).toBe(200);
    const resolved = await get(id);
    expect(resolved).toMatchObject({ status: 'resolved' });
    const postmortem = await post(id, 'postmortem', a.key, {
      impact: '1,200 records exposed for 3 hours',
      timeline: 'found 10:12, private 10:42',
      rootCause: 'a public ACL left by a migration script',
      actions: 'ACL lint in CI',
    });
    expect(postmortem.status).toBe(200);
    const closed = await statusIs(id, 'closed');
    expect(closed.timeline.map((e) => e.type)).toEqual([
      'triggered',
      'paged',
      'acknowledged',
      'status-changed',
      'note',
      'status-changed',
      'resolved',
      'postmortem',
      'closed',
    ]);
    expect(closed.timeline.find((e) => e.type === 'note')).toMatchObject({
      actor: `user:${b.userId}`,
      text: 'bucket made private 10:42',
    });
    expect(closed).toMatchObject({
      resolutionSummary: 'access revoked, keys rotated',
      postmortem: { rootCause: 'a public ACL left by a migration script', actions: 'ACL lint in CI' },
    });
    await problem(await post(id, 'notes', a.key, { text: 'too late' }), 409, 'incident-closed');
    const handle = api.temporal.workflow.getHandle(incidentWorkflowId(id));
    expect(await handle.result()).toMatchObject({ status: 'closed', late: false });

    const audits = await api.database.db
      .select()
      .from(auditLog)
      .where(eq(auditLog.targetId, id))
      .orderBy(asc(auditLog.seq));
    expect(audits.map((e) => e.action)).toEqual([
      'incident.requested',
      'incident.triggered',
      'incident.paged',
      'incident.acknowledged',
      'incident.status-changed',
      'incident.note',
      'incident.status-changed',
      'incident.resolved',
      'incident.postmortem',
      'incident.closed',
    ]);
    for (const e of audits.slice(1)) expect(e.workflowId).toBe(incidentWorkflowId(id));
    // Texts stay out of the audit: only their IDs and hashes.
    expect(JSON.stringify(audits)).not.toMatch(/bucket made private|public ACL|Customer export/);
    expect((await verifyAuditChain(api.database.db)).valid).toBe(true);
  });
});

describe('acknowledgement link', () => {
  it('GET shows a confirm page and changes nothing; POST acknowledges once; altered or expired links are refused', async () => {
    const policy = await seedPolicy(api.database.db, [{ targets: [user(a.userId), user(b.userId)], waitSeconds: 60 }]);
    const id = await open(policy.id);
    const [pageA, pageB] = await pageCount(id, 2);
    const linkOf = (p: typeof pageA) =>
      `/incident-ack/${incidentAckToken(api.keyring, { pageId: p!.id, expiresAt: p!.linkExpiresAt.getTime() })}`;
    const shown = await api.app.request(linkOf(pageA));
    expect(shown.status).toBe(200);
    expect(shown.headers.get('content-security-policy')).toContain("form-action 'self'");
    expect(await shown.text()).toContain('Customer export found on a public bucket');
    expect((await get(id)).status).toBe('triggered');

    const tampered = linkOf(pageA).replace(/.$/, (ch) => (ch === 'A' ? 'B' : 'A'));
    expect((await api.app.request(tampered, { method: 'POST' })).status).toBe(403);
    const expired = `/incident-ack/${incidentAckToken(api.keyring, { pageId: pageA!.id, expiresAt: Date.now() - 1000 })}`;
    expect((await api.app.request(expired, { method: 'POST' })).status).toBe(410);

    const acked = await api.app.request(linkOf(pageA), { method: 'POST' });
    expect(acked.status).toBe(200);
    expect(await acked.text()).toContain('Acknowledged');
    const incident = await get(id);
    expect(incident).toMatchObject({ status: 'acknowledged', acknowledgedBy: `user:${a.userId}` });
    expect(incident.timeline.find((e) => e.type === 'acknowledged')!.details).toMatchObject({ method: 'page-link' });
    expect((await api.app.request(linkOf(pageA), { method: 'POST' })).status).toBe(410);
    // Another responder's link still works once and changes nothing.
    const again = await api.app.request(linkOf(pageB), { method: 'POST' });
    expect(again.status).toBe(200);
    expect(await again.text()).toContain('Already acknowledged');
    const [used] = await api.database.db.select().from(incidentPages).where(eq(incidentPages.id, pageA!.id));
    expect(used!.linkUsedAt).not.toBeNull();
  });
});
