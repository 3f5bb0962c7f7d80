import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../activities/audit-verify';
import { openPasswordExport, type SealedExportFile } from '../../activities/export-crypto';
import { newSubject } from '../../activities/subject-writer';
import { auditLog, destructions, notifications, requestExports, requestTexts } from '../../db/schema';
import { defaultCatalog } from '../../domain/catalog';
import { requestWorkflowId } from '../../domain/ids';
import { bearer, readJson, type Problem } from '../helpers/api';
import { seedStaff } from '../helpers/incidents';
import { insertNewSubject } from '../helpers/notifications';
import { startTestApp } from '../helpers/running-app';
import type { TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';

interface Detail {
  id: string;
  type: string;
  status: string;
  outcome: string | null;
  dueAt: string;
  timeLeftMs: number | null;
  late: boolean;
  clock: { kind: string; source: string; extensionMs: number; reminders: string[] };
  exports: { id: string; delivery: string; sha256: string; recipient: string }[];
  objections: { field: string; status: string; statement: string | null }[];
  destruction: { id: string; certificateId: string | null } | null;
  timeline: { type: string; at: string; actor: string; details: Record<string, unknown>; text?: string | null }[];
}
interface SubjectRead {
  status: string;
  fields: Record<string, { value: unknown; underObjection?: true }>;
  objections: { field: string; status: string; statement: string | null }[];
}

let api: TestApp;
let stop: () => Promise<void>;
let owner: Awaited<ReturnType<typeof seedStaff>>;

/** The personal values the test puts in: none may appear in histories, logs or audit details. */
const planted: string[] = [];
const plant = (v: string) => (planted.push(v), v);

const seedSubject = async (o: { jurisdiction?: string; legalHold?: boolean; retentionUntil?: string } = {}) => {
  const tag = randomUUID().slice(0, 8);
  const values = new Map<string, string | number>([
    ['name', plant(`Zhang Wei ${tag}`)],
    ['email', plant(`wei.${tag}@mail.example`)],
    ['phone', plant(`1380013${tag.replace(/[^0-9]/g, '1').slice(0, 4)}`)],
    ['creditScore', 612],
    ['segment', 'retail'],
  ]);
  const created = newSubject(
    defaultCatalog,
    api.keyring,
    {
      externalRef: `ext-${tag}`,
      jurisdiction: o.jurisdiction ?? 'CN',
      locale: o.jurisdiction === 'EU' ? 'en' : 'zh-CN',
      fields: {},
      ...(o.retentionUntil ? { retentionUntil: o.retentionUntil } : {}),
    },
    values,
  );
  await insertNewSubject(api.database.db, created, { legalHold: o.legalHold ?? false });
  return { id: created.subject.id, externalRef: created.subject.externalRef, values };
};

beforeAll(async () => {
  ({ api, stop } = await startTestApp());
  owner = await seedStaff(api.database.db, api.keyring, 'owner');
}, 120_000);
afterAll(() => stop?.());

const VERIFIED = { method: 'in-person-id', reference: 'ID card checked at branch 12' };
const file = async (body: Record<string, unknown>, expected = 202) => {
  const res = await api.app.request('/v1/requests', {
    method: 'POST',
    headers: bearer(owner.key),
    body: JSON.stringify(body),
  });
  expect(res.status, await res.clone().text()).toBe(expected);
  return (await readJson<{ id: string }>(res)).id;
};
const get = async (id: string) =>
  readJson<Detail>(await api.app.request(`/v1/requests/${id}`, { headers: bearer(owner.key) }));
const post = (id: string, path: string, body?: unknown) =>
  api.app.request(`/v1/requests/${id}/${path}`, {
    method: 'POST',
    headers: bearer(owner.key),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
const opened = (id: string) =>
  waitFor(
    async () => (await api.app.request(`/v1/requests/${id}`, { headers: bearer(owner.key) })).ok || undefined,
    `request ${id}`,
  );
const statusIs = (id: string, status: string) =>
  waitFor(async () => {
    const r = await get(id);
    return r.status === status ? r : undefined;
  }, `request ${id} ${status}`);
const subjectRead = async (id: string) =>
  readJson<SubjectRead>(await api.app.request(`/v1/subjects/${id}`, { headers: bearer(owner.key) }));

describe('data-subject requests through the API', () => {
  it('access: a password export decrypts to exactly the imported values; its hash and recipient are recorded', () =>
    (async () => {
      const s = await seedSubject();
      const id = await file({ type: 'access', subject: { externalRef: s.externalRef }, verification: VERIFIED });
      await opened(id);
      const res = await post(id, 'fulfil', { delivery: 'password' });
      expect(res.status, await res.clone().text()).toBe(200);
      const fulfilled = await readJson<{ status: string; exportId: string; sha256: string; password: string }>(res);
      expect(fulfilled.status).toBe('fulfilled');
      expect(fulfilled.password).toMatch(/^[A-Z2-9]{24}$/);
      const sealed = await readJson<SealedExportFile>(
        await api.app.request(`/v1/requests/${id}/export`, { headers: bearer(owner.key) }),
      );
      expect(openPasswordExport(sealed, 'wrong password')).toBeUndefined();
      const opened2 = JSON.parse(openPasswordExport(sealed, fulfilled.password)!) as {
        json: {
          fields: { field: string; value: unknown; purposes: unknown[]; retention: string }[];
          consents: unknown[];
        };
        csv: string;
      };
      const exported = Object.fromEntries(opened2.json.fields.map((f) => [f.field, f.value]));
      expect(exported).toEqual(Object.fromEntries(s.values));
      expect(opened2.json.fields.every((f) => f.purposes.length > 0 && f.retention)).toBe(true);
      expect(opened2.csv.split('\r\n')[0]).toBe('field,classification,value,purposes,retention');
      for (const v of s.values.values()) expect(opened2.csv).toContain(String(v));
      const detail = await get(id);
      expect(detail.exports).toEqual([
        expect.objectContaining({
          id: fulfilled.exportId,
          delivery: 'password',
          sha256: fulfilled.sha256,
          recipient: `password:user:${owner.userId}`,
        }),
      ]);
      // A second fulfil is a conflict; the export is issued once.
      expect((await post(id, 'fulfil', { delivery: 'password' })).status).toBe(409);
    })());

  it('portability by link: the subject is sent an expiring link; correction re-encrypts with old and new hashes audited', async () => {
    const s = await seedSubject();
    const id = await file({ type: 'portability', subject: { id: s.id }, verification: VERIFIED });
    await opened(id);
    const res = await post(id, 'fulfil', { delivery: 'link' });
    expect(res.status).toBe(200);
    const { exportId } = await readJson<{ exportId: string }>(res);
    await waitFor(async () => {
      const [row] = await api.database.db
        .select()
        .from(notifications)
        .where(and(eq(notifications.idempotencyKey, `${requestWorkflowId(id)}:subject-closed`)));
      return row?.status === 'sent' ? row : undefined;
    }, 'export link sent');
    const [exp] = await api.database.db.select().from(requestExports).where(eq(requestExports.id, exportId));
    expect(exp!.delivery).toBe('link');
    expect(exp!.linkExpiresAt).not.toBeNull();

    const newPhone = plant('13911112222');
    const c = await file({ type: 'correction', subject: { id: s.id }, fields: ['phone'] });
    await statusIs(c, 'verifying');
    expect((await post(c, 'fulfil', { values: { phone: newPhone } })).status).toBe(409);
    expect((await post(c, 'verify', VERIFIED)).status).toBe(200);
    expect((await post(c, 'fulfil', {})).status).toBe(422);
    expect((await post(c, 'fulfil', { values: { phone: newPhone } })).status).toBe(200);
    const revealed = await readJson<SubjectRead>(
      await api.app.request(`/v1/subjects/${s.id}/reveal?purpose=customer-service`, { headers: bearer(owner.key) }),
    );
    expect(revealed.fields.phone!.value).toBe(newPhone);
    const [audit] = await api.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, 'subject.corrected'), eq(auditLog.targetId, s.id)));
    const changes = audit!.details.changes as { field: string; oldHash: string; newHash: string }[];
    expect(changes).toEqual([
      {
        field: 'phone',
        oldHash: expect.stringMatching(/^[0-9a-f]{64}$/),
        newHash: expect.stringMatching(/^[0-9a-f]{64}$/),
      },
    ]);
    expect(changes[0]!.oldHash).not.toBe(changes[0]!.newHash);
  });

  it('restriction refuses reveals for the named purposes; erasure under legal hold becomes a restriction with the reason', async () => {
    const s = await seedSubject();
    const r = await file({
      type: 'restriction',
      subject: { id: s.id },
      purposes: ['customer-service'],
      verification: VERIFIED,
    });
    await opened(r);
    const done = await readJson<{ outcome: string; restrictedPurposes: string[] }>(await post(r, 'fulfil', {}));
    expect(done).toMatchObject({ outcome: 'restricted', restrictedPurposes: ['customer-service'] });
    const refused = await api.app.request(`/v1/subjects/${s.id}/reveal?purpose=customer-service`, {
      headers: bearer(owner.key),
    });
    expect(refused.status).toBe(403);
    expect((await readJson<Problem>(refused)).code).toBe('restricted-by-request');
    expect((await subjectRead(s.id)).status).toBe('restricted');

    const held = await seedSubject({ legalHold: true });
    const e = await file({ type: 'erasure', subject: { id: held.id }, verification: VERIFIED });
    await opened(e);
    const erased = await readJson<{ outcome: string; restrictedPurposes: string[]; destructionId?: string }>(
      await post(e, 'fulfil', {}),
    );
    expect(erased.outcome).toBe('restricted:legal-hold');
    expect(erased.destructionId).toBeUndefined();
    expect(erased.restrictedPurposes).toContain('marketing');
    expect(erased.restrictedPurposes).not.toContain('regulatory-reporting');
    const detail = await get(e);
    expect(detail.timeline.find((t) => t.type === 'fulfilled')!.details).toMatchObject({ reason: 'legal-hold' });
    expect(
      (await api.app.request(`/v1/subjects/${held.id}/reveal?purpose=customer-service`, { headers: bearer(owner.key) }))
        .status,
    ).toBe(403);

    const kept = await seedSubject({ retentionUntil: '2999-01-01' });
    const k = await file({ type: 'erasure', subject: { id: kept.id }, verification: VERIFIED });
    await opened(k);
    expect((await readJson<{ outcome: string }>(await post(k, 'fulfil', {}))).outcome).toBe(
      'restricted:retention-obligation',
    );
  });

  it('erasure of a subject without hold or retention opens a destruction (child workflow) scoped to the subject', async () => {
    const s = await seedSubject();
    const id = await file({ type: 'erasure', subject: { id: s.id }, verification: VERIFIED });
    await opened(id);
    const res = await post(id, 'fulfil', {});
    expect(res.status).toBe(200);
    const { outcome, destructionId } = await readJson<{ outcome: string; destructionId: string }>(res);
    expect(outcome).toBe('destruction-opened');
    const destruction = await waitFor(async () => {
      const [row] = await api.database.db.select().from(destructions).where(eq(destructions.id, destructionId));
      return row;
    }, 'destruction recorded');
    expect(destruction).toMatchObject({
      requestedBy: `request:${id}`,
      origin: { kind: 'request', requestId: id },
      scope: { kind: 'subjects', subjectIds: [s.id] },
    });
    const detail = await get(id);
    expect(detail).toMatchObject({ status: 'fulfilled', destruction: { id: destructionId, certificateId: null } });
  });

  it('an objection marks the fields at once; after upheld the subject’s statement shows on reads', async () => {
    const s = await seedSubject();
    const statement = plant('I repaid this loan in full in March; the overdue record is wrong.');
    const id = await file({
      type: 'objection',
      subject: { id: s.id },
      fields: ['creditScore'],
      details: 'The score is wrong',
    });
    const marked = await waitFor(async () => {
      const read = await subjectRead(s.id);
      return read.fields.creditScore?.underObjection ? read : undefined;
    }, 'objection mark');
    expect(marked.objections).toEqual([
      expect.objectContaining({ field: 'creditScore', status: 'under-objection', statement: null }),
    ]);
    const detail = await get(id);
    expect(detail.clock).toMatchObject({ kind: 'cn-credit-objection', source: '征信业管理条例 Art. 25' });
    expect(Date.parse(detail.dueAt) - Date.parse(detail.timeline[0]!.at)).toBeGreaterThan(19 * 86_400_000);
    expect((await post(id, 'verify', VERIFIED)).status).toBe(200);
    expect((await post(id, 'fulfil', { outcome: 'rejected' })).status).toBe(422);
    expect((await post(id, 'fulfil', { outcome: 'upheld', statement })).status).toBe(200);
    const after = await subjectRead(s.id);
    expect(after.fields.creditScore!.underObjection).toBeUndefined();
    expect(after.objections).toEqual([expect.objectContaining({ field: 'creditScore', status: 'upheld', statement })]);
  });

  it('a complaint is answered with an outcome and a reply; a refusal needs a reason (422) and the subject is told', async () => {
    const s = await seedSubject();
    const id = await file({
      type: 'complaint',
      subject: { id: s.id },
      category: 'credit-record',
      details: plant('My credit report lists a loan I never took'),
      verification: VERIFIED,
    });
    await opened(id);
    expect((await post(id, 'fulfil', { outcome: 'partly-upheld', reply: 'We removed the entry' })).status).toBe(200);
    const detail = await get(id);
    expect(detail).toMatchObject({
      status: 'fulfilled',
      outcome: 'partly-upheld',
      clock: { kind: 'cn-credit-complaint' },
    });
    expect(detail.timeline.find((t) => t.type === 'fulfilled')!.text).toBe('We removed the entry');

    const r = await file({ type: 'access', subject: { id: s.id }, verification: VERIFIED });
    await opened(r);
    const noReason = await post(r, 'refuse', {});
    expect(noReason.status).toBe(422);
    expect((await readJson<Problem>(noReason)).fields).toEqual([{ path: 'reason', message: 'required' }]);
    expect((await post(r, 'refuse', { reason: 'The request repeats one answered last week' })).status).toBe(200);
    await waitFor(async () => {
      const [row] = await api.database.db
        .select()
        .from(notifications)
        .where(eq(notifications.idempotencyKey, `${requestWorkflowId(r)}:subject-closed`));
      return row?.status === 'sent' ? row : undefined;
    }, 'refusal notice');
    expect((await get(r)).timeline.find((t) => t.type === 'refused')!.text).toBe(
      'The request repeats one answered last week',
    );
  });

  it('extension: EU only, once, within the first period (409 otherwise); the subject is told', async () => {
    const eu = await seedSubject({ jurisdiction: 'EU' });
    const id = await file({
      type: 'access',
      subject: { id: eu.id },
      verification: VERIFIED,
      clock: { window: '30 seconds' },
    });
    await opened(id);
    expect((await post(id, 'extend', { by: '10 seconds' })).status).toBe(422);
    expect((await post(id, 'extend', { by: '120 seconds', reason: 'Large archive to search' })).status).toBe(409);
    const ok = await post(id, 'extend', { by: '20 seconds', reason: 'Large archive to search' });
    expect(ok.status).toBe(200);
    const second = await post(id, 'extend', { by: '5 seconds', reason: 'Again' });
    expect(second.status).toBe(409);
    expect((await readJson<Problem>(second)).code).toBe('request-already-extended');
    expect((await get(id)).clock.extensionMs).toBe(20_000);
    await waitFor(async () => {
      const [row] = await api.database.db
        .select()
        .from(notifications)
        .where(eq(notifications.idempotencyKey, `${requestWorkflowId(id)}:subject-extended`));
      return row?.status === 'sent' ? row : undefined;
    }, 'extension notice');

    const late = await file({
      type: 'access',
      subject: { id: eu.id },
      verification: VERIFIED,
      clock: { window: '2 seconds' },
    });
    await waitFor(async () => ((await get(late)).late ? true : undefined), 'first period over');
    const tooLate = await post(late, 'extend', { by: '2 seconds', reason: 'Too late now' });
    expect(tooLate.status).toBe(409);
    expect((await readJson<Problem>(tooLate)).code).toBe('request-extension-too-late');

    const cn = await seedSubject();
    const c = await file({ type: 'access', subject: { id: cn.id }, verification: VERIFIED });
    await opened(c);
    expect((await readJson<Problem>(await post(c, 'extend', { by: '1 day', reason: 'Busy' }))).code).toBe(
      'request-not-extendable',
    );
  });

  it('lists by status, type and overdue; stats give counts, time to close and on-time share', async () => {
    const list = await readJson<{ requests: { type: string; status: string }[] }>(
      await api.app.request('/v1/requests?type=access&status=fulfilled', { headers: bearer(owner.key) }),
    );
    expect(list.requests.length).toBeGreaterThan(0);
    expect(list.requests.every((r) => r.type === 'access' && r.status === 'fulfilled')).toBe(true);
    const overdue = await readJson<{ requests: { late: boolean }[] }>(
      await api.app.request('/v1/requests?overdue=true', { headers: bearer(owner.key) }),
    );
    expect(overdue.requests.length).toBeGreaterThan(0);
    expect(overdue.requests.every((r) => r.late)).toBe(true);
    const stats = await readJson<{
      total: number;
      byType: Record<string, number>;
      byStatus: Record<string, number>;
      medianTimeToCloseMs: number;
      p95TimeToCloseMs: number;
      onTimePercent: number;
    }>(await api.app.request('/v1/requests/stats', { headers: bearer(owner.key) }));
    expect(stats.byType.access).toBeGreaterThan(0);
    expect(stats.byStatus.fulfilled).toBeGreaterThan(0);
    expect(stats.medianTimeToCloseMs).toBeGreaterThan(0);
    expect(stats.p95TimeToCloseMs).toBeGreaterThanOrEqual(stats.medianTimeToCloseMs);
    expect(stats.onTimePercent).toBeGreaterThan(0);
    expect(
      (
        await api.app.request('/v1/requests', {
          method: 'POST',
          headers: bearer(owner.key),
          body: JSON.stringify({ type: 'objection', subject: { id: randomUUID() } }),
        })
      ).status,
    ).toBe(400);
  });

  it('no personal value in workflow histories, logs, audit details or the request texts at rest', async () => {
    const ids = (
      await readJson<{ requests: { id: string }[] }>(
        await api.app.request('/v1/requests?limit=500', { headers: bearer(owner.key) }),
      )
    ).requests.map((r) => r.id);
    expect(ids.length).toBeGreaterThan(10);
    const histories = await Promise.all(
      ids.map(async (id) =>
        JSON.stringify(await api.temporal.workflow.getHandle(requestWorkflowId(id)).fetchHistory()),
      ),
    );
    const audit = JSON.stringify((await api.database.db.select().from(auditLog)).map((a) => a.details));
    const texts = (await api.database.db.select().from(requestTexts))
      .map((t) => t.ciphertext.toString('latin1'))
      .join('\n');
    const logs = api.logLines.join('\n');
    for (const value of planted) {
      expect(
        histories.find((h) => h.includes(value)),
        `history holds ${value}`,
      ).toBeUndefined();
      expect(audit.includes(value), `audit holds ${value}`).toBe(false);
      expect(logs.includes(value), `logs hold ${value}`).toBe(false);
      expect(texts.includes(value), `request texts hold ${value} in clear`).toBe(false);
    }
    expect((await verifyAuditChain(api.database.db)).valid).toBe(true);
  });
});
