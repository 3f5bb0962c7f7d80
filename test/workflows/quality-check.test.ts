import { randomUUID } from 'node:crypto';
import type { Worker } from '@temporalio/worker';
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAudit } from '../../activities/audit';
import { insertNewSubjects, newSubject, rawSql } from '../../activities/subject-writer';
import { alerts, consents, incidents, notifications, qualityBatches, subjectKeys, subjects } from '../../db/schema';
import { defaultCatalog } from '../../domain/catalog';
import { incidentWorkflowId, qualityCheckWorkflowId } from '../../domain/ids';
import { prcIdCheckCharacter, QualityThresholds } from '../../domain/quality';
import { qualityCheck } from '../../workflows';
import { bearer, readJson, seedPrincipal } from '../helpers/api';
import { seedPolicy, seedStaff, user } from '../helpers/incidents';
import { createTestApp, createTestWorker, type TestApp } from '../helpers/services';

interface QualityReportView {
  status: string;
  fields: Record<string, unknown>;
  timeliness: Record<string, unknown>;
  consistency: Record<string, unknown>;
  breachedThresholds: { check: string; field?: string }[];
}

let api: TestApp;
let worker: Worker;
let running: Promise<void>;

beforeAll(async () => {
  api = await createTestApp();
  worker = await createTestWorker(api);
  running = worker.run();
}, 120_000);

afterAll(async () => {
  worker?.shutdown();
  await running;
  await api?.close();
});

const idNumber = (n: number, birth = '19850615') => {
  const first17 = `110105${birth}${String(n).padStart(3, '0')}`;
  return `${first17}${prcIdCheckCharacter(first17)}`;
};

/** A clean subject's values; `defects` replaces or (undefined) removes some. */
const values = (n: number, defects: Record<string, string | undefined> = {}) => {
  const base: Record<string, string | undefined> = {
    name: `Subject ${n}`,
    phone: `1381234${String(n).padStart(4, '0')}`,
    email: `subject.${n}@example.com`,
    idNumber: idNumber(n),
    creditScore: '700',
    customerSince: '2020-01-01',
    segment: 'retail',
    ...defects,
  };
  return new Map(Object.entries(base).filter((e): e is [string, string] => e[1] !== undefined));
};

const badCheck = (() => {
  const good = idNumber(3);
  return `${good.slice(0, 17)}${good[17] === '0' ? '1' : '0'}`;
})();

/** Eleven subjects that are not destroyed, with one defect each where named, and one destroyed subject. */
const DATASET: Record<string, string | undefined>[] = [
  { phone: '12345' }, // s1: invalid phone (stale too)
  { email: 'not-an-email' }, // s2: invalid e-mail (stale too)
  { idNumber: badCheck }, // s3: wrong GB 11643 check digit
  { idNumber: idNumber(4, '20991231') }, // s4: birth date in the future
  { creditScore: '999' }, // s5: out of range
  { customerSince: '2020-02-30' }, // s6: no such date
  { phone: undefined }, // s7: no phone
  { name: undefined }, // s8: no name
  { email: 'dup@example.com' }, // s9 and s10 share an e-mail
  { email: 'dup@example.com' },
  {}, // s11: its data key is lost below (encrypted values it cannot read)
];

const seed = async () => {
  const db = api.database.db;
  const made = [...DATASET, {}].map((defects, i) =>
    newSubject(
      defaultCatalog,
      api.keyring,
      { externalRef: `Q-${randomUUID()}`, jurisdiction: 'CN', locale: 'zh-CN', fields: {} },
      i === 10
        ? new Map([
            ['name', 'Keyless'],
            ['segment', 'retail'],
          ])
        : values(i + 1, defects),
    ),
  );
  await rawSql(db).begin((tx) => insertNewSubjects(tx, randomUUID(), made));
  const ids = made.map((m) => m.subject.id);
  const longAgo = new Date(Date.now() - 400 * 86_400_000);
  await db
    .update(subjects)
    .set({ updatedAt: longAgo })
    .where(sql`${subjects.id} in (${ids[0]}, ${ids[1]})`);
  await db.delete(subjectKeys).where(eq(subjectKeys.subjectId, ids[10]!));
  // The twelfth is destroyed but kept its fields and a granted consent: two consistency problems.
  const destroyed = ids[11]!;
  await db.update(subjects).set({ status: 'destroyed' }).where(eq(subjects.id, destroyed));
  const now = new Date();
  await db.insert(consents).values({
    id: randomUUID(),
    subjectId: destroyed,
    noticeId: randomUUID(),
    purpose: 'marketing',
    channel: 'email',
    status: 'granted',
    requestedBy: 'test',
    requestedAt: now,
    respondBy: now,
  });
  return ids;
};

const runCheck = (checkId: string, o: { thresholds?: QualityThresholds } = {}) =>
  api.temporal.workflow.execute(qualityCheck, {
    taskQueue: api.config.TEMPORAL_TASK_QUEUE,
    workflowId: qualityCheckWorkflowId(checkId),
    // Pages of 4 and two pages per run: the check continues as new twice over 11 subjects.
    args: [{ checkId, requestedBy: 'test', pageSize: 4, pagesPerRun: 2, ...o }],
  });

describe('quality check on a crafted dataset', () => {
  it(
    'reports exactly the planted defects, stores counts only, alerts and opens a sev4 incident',
    { timeout: 120_000 },
    async () => {
      const db = api.database.db;
      const responder = await seedStaff(db, api.keyring, 'responder');
      await seedPolicy(db, [{ targets: [user(responder.userId)], waitSeconds: 600 }]);
      const owner = await seedStaff(db, api.keyring, 'owner');
      await seed();
      const checkId = randomUUID();
      const result = await runCheck(checkId);
      expect(result).toMatchObject({ checkId, subjectsChecked: 11, breaches: 10 });
      expect(result.alertId).toEqual(expect.any(String));
      expect(result.incidentId).toEqual(expect.any(String));

      // 11 subjects in pages of 4: three pages, each counted once.
      const pages = await db.select().from(qualityBatches).where(eq(qualityBatches.checkId, checkId));
      expect(pages.map((p) => p.subjects).sort()).toEqual([3, 4, 4]);

      const { key } = await seedPrincipal(db, 'auditor');
      const res = await api.app.request(`/v1/quality-reports/${checkId}`, { headers: bearer(key) });
      expect(res.status).toBe(200);
      const report = await readJson<QualityReportView>(res);
      expect(report).toMatchObject({ status: 'completed', subjectsChecked: 11, breaches: 10 });
      expect(report.fields).toEqual({
        name: { present: 10, missing: 1, completeness: 10 / 11 },
        phone: { present: 9, missing: 2, completeness: 9 / 11, invalid: 1, duplicated: 0, duplicateGroups: 0 },
        email: { present: 10, missing: 1, completeness: 10 / 11, invalid: 1, duplicated: 2, duplicateGroups: 1 },
        idNumber: { present: 10, missing: 1, completeness: 10 / 11, invalid: 2, duplicated: 0, duplicateGroups: 0 },
        creditScore: { present: 10, missing: 1, completeness: 10 / 11, invalid: 1 },
        customerSince: { present: 10, missing: 1, completeness: 10 / 11, invalid: 1 },
        segment: { present: 11, missing: 0, completeness: 1 },
      });
      expect(report.timeliness).toMatchObject({ stale: 2, staleRatio: 2 / 11 });
      expect(report.consistency).toEqual({
        grantedConsentOnDestroyed: 1,
        destroyedWithData: 1,
        encryptedWithoutKey: 1,
      });
      expect(
        report.breachedThresholds.map((b: { check: string; field?: string }) => `${b.check}:${b.field ?? ''}`).sort(),
      ).toEqual([
        'completeness:idNumber',
        'completeness:name',
        'completeness:phone',
        'consistency:',
        'uniqueness:email',
        'validity:creditScore',
        'validity:customerSince',
        'validity:email',
        'validity:idNumber',
        'validity:phone',
      ]);
      // Counts only: no value of the dataset anywhere in the report.
      const text = JSON.stringify(report);
      for (const secret of ['dup@example.com', 'not-an-email', '12345', 'Subject 1', badCheck])
        expect(text).not.toContain(secret);

      const list = await api.app.request('/v1/quality-reports', { headers: bearer(key) });
      expect((await readJson<{ reports: { id: string }[] }>(list)).reports.map((r) => r.id)).toContain(checkId);

      const [alert] = await db
        .select()
        .from(alerts)
        .where(and(eq(alerts.targetType, 'quality-report'), eq(alerts.targetId, checkId)));
      expect(alert).toMatchObject({ kind: 'quality-threshold-breached', id: result.alertId });
      const [incident] = await db.select().from(incidents).where(eq(incidents.id, result.incidentId!));
      expect(incident).toMatchObject({ severity: 'sev4', category: 'data-quality' });
      // The owner is told through the staff outbox, with counts only.
      const notices = await db.select().from(notifications).where(eq(notifications.template, 'quality-breach'));
      expect(notices.map((n) => [n.recipientRef, n.status])).toEqual([[`user:${owner.userId}`, 'sent']]);
      const audited = await listAudit(db, { targetType: 'quality-report', targetId: checkId, limit: 10 });
      expect(audited.map((a) => a.action).sort()).toEqual([
        'alert.raised',
        'alert.sent',
        'quality-check.completed',
        'quality-check.escalated',
        'quality-check.started',
      ]);
      await api.temporal.workflow.getHandle(incidentWorkflowId(result.incidentId!)).terminate('test over');

      // The same data judged by lenient thresholds: nothing breached, nobody alerted.
      const lenient = QualityThresholds.parse({
        completeness: {},
        maxInvalidRatio: 1,
        maxDuplicateRatio: 1,
        maxInconsistencies: 10,
      });
      const quiet = await runCheck(randomUUID(), { thresholds: lenient });
      expect(quiet).toMatchObject({ subjectsChecked: 11, breaches: 0, alertId: null, incidentId: null });
    },
  );

  it('GET /v1/quality-reports/{id}: 404 for an unknown report, 403 for an approver', async () => {
    const { key } = await seedPrincipal(api.database.db, 'owner');
    expect((await api.app.request(`/v1/quality-reports/${randomUUID()}`, { headers: bearer(key) })).status).toBe(404);
    const approver = await seedPrincipal(api.database.db, 'approver');
    expect((await api.app.request('/v1/quality-reports', { headers: bearer(approver.key) })).status).toBe(403);
  });
});
