import { randomUUID } from 'node:crypto';
import type { Payload } from '@temporalio/common';
import type { Worker } from '@temporalio/worker';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditLog,
  destructions,
  importRejects,
  processTexts,
  subjectFields,
  subjectImports,
  subjectKeys,
  subjects,
} from '../../db/schema';
import { destructionWorkflowId } from '../../domain/ids';
import { bearer, readJson, seedPrincipal, type Problem } from '../helpers/api';
import { seedSubjects } from '../helpers/backups';
import { createTestApp, createTestWorker, type TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';

interface Destruction {
  id: string;
  status: string;
  matched: number;
  held: number;
  targeted: number;
  subjectsDestroyed: number;
  keysDestroyed: number;
  fieldRowsDeleted: number;
  outcome: string | null;
  reason: string;
  cancelReason: string | null;
  approvals: { actor: string; decision: string; comment: string | null }[];
  certificate: {
    id: string;
    sha256: string;
    certificate: Record<string, Record<string, unknown>>;
  } | null;
}
type Principal = Awaited<ReturnType<typeof seedPrincipal>>;

let api: TestApp;
let worker: Worker;
let running: Promise<void>;
let owner: Principal;
let approverA: Principal;
let approverB: Principal;
let auditor: Principal;

beforeAll(async () => {
  api = await createTestApp();
  worker = await createTestWorker(api);
  running = worker.run();
  const db = api.database.db;
  owner = await seedPrincipal(db, 'owner');
  approverA = await seedPrincipal(db, 'approver', 'approver A');
  approverB = await seedPrincipal(db, 'approver', 'approver B');
  auditor = await seedPrincipal(db, 'auditor');
}, 120_000);
afterAll(async () => {
  worker?.shutdown();
  await running;
  await api?.close();
});

const post = (path: string, key: string, body: unknown) =>
  api.app.request(`/v1${path}`, { method: 'POST', headers: bearer(key), body: JSON.stringify(body) });
const get = (path: string, key: string) => api.app.request(`/v1${path}`, { headers: bearer(key) });

const request = async (scope: unknown, o: { grace?: string; approval?: string } = {}) => {
  const res = await post('/destructions', owner.key, {
    scope,
    reason: 'retention period over: customer file closed',
    approvalWindow: o.approval ?? '1 minute',
    graceWindow: o.grace ?? '1 second',
  });
  return res;
};
const decide = (id: string, who: Principal, decision: 'approve' | 'reject') =>
  post(`/destructions/${id}/approvals`, who.key, { decision, comment: `${decision}d after review` });
const detail = async (id: string) => readJson<Destruction>(await get(`/destructions/${id}`, auditor.key));
const settled = (id: string, status: string) =>
  waitFor(async () => {
    const d = await detail(id);
    return d.status === status ? d : undefined;
  }, `destruction ${id} ${status}`);
const keysOf = async (ids: string[]) =>
  (await api.database.db.select().from(subjectKeys).where(inArray(subjectKeys.subjectId, ids))).length;
const fieldsOf = async (ids: string[]) =>
  (await api.database.db.select().from(subjectFields).where(inArray(subjectFields.subjectId, ids))).length;

describe('destruction', () => {
  it('runs the whole path with two approvers: certificate verifies, subjects are tombstones, a tampered certificate fails', async () => {
    const seeded = await seedSubjects(api.database, api.keyring, 5);
    const doomed = seeded.ids.slice(0, 3);
    const kept = seeded.ids.slice(3);
    const res = await request({ kind: 'subjects', subjectIds: doomed });
    expect(res.status).toBe(202);
    const started = await readJson<{ id: string; matched: number; held: number; targeted: number }>(res);
    expect(started).toMatchObject({ matched: 3, held: 0, targeted: 3 });

    // The requester (an owner) cannot approve; an approver approving twice counts once.
    expect((await decide(started.id, owner, 'approve')).status).toBe(403);
    const first = await readJson<{ approvals: number; counted: boolean }>(
      await decide(started.id, approverA, 'approve'),
    );
    expect(first).toMatchObject({ approvals: 1, counted: true });
    const again = await readJson<{ approvals: number; counted: boolean }>(
      await decide(started.id, approverA, 'approve'),
    );
    expect(again).toMatchObject({ approvals: 1, counted: false });
    expect((await detail(started.id)).status).toBe('awaiting-approval');
    expect((await decide(started.id, approverB, 'approve')).status).toBe(200);

    const done = await settled(started.id, 'completed');
    expect(done).toMatchObject({ subjectsDestroyed: 3, keysDestroyed: 3, fieldRowsDeleted: 12 });
    expect(done.approvals.map((a) => a.decision)).toEqual(['approve', 'approve']);
    const cert = done.certificate!;
    expect(cert.certificate.sanitization).toMatchObject({
      subjectsDestroyed: 3,
      keysDestroyed: 3,
      fieldRowsDeleted: 12,
    });
    expect(cert.certificate.verification).toMatchObject({ result: 'pass', keysRemaining: 0, fieldRowsRemaining: 0 });
    expect(JSON.stringify(cert.certificate)).not.toMatch(/known-personal|Personname|seed-/);

    const verified = await readJson<{ valid: boolean }>(await get(`/certificates/${cert.id}/verify`, auditor.key));
    expect(verified).toMatchObject({ valid: true, signature: true, digest: true, auditEntry: true });
    expect((await get(`/certificates/${cert.id}`, auditor.key)).status).toBe(200);

    const db = api.database.db;
    const rows = await db.select().from(subjects).where(inArray(subjects.id, doomed));
    expect(rows.every((r) => r.status === 'destroyed' && r.externalRef.startsWith('destroyed:'))).toBe(true);
    expect(await keysOf(doomed)).toBe(0);
    expect(await fieldsOf(doomed)).toBe(0);
    expect(await keysOf(kept)).toBe(2);
    expect(await fieldsOf(kept)).toBe(8);
    const read = await readJson<{ status: string }>(await get(`/subjects/${doomed[0]}`, owner.key));
    expect(read.status).toBe('destroyed');
    const actions = (await db.select().from(auditLog).where(eq(auditLog.targetId, started.id))).map((e) => e.action);
    expect(actions).toEqual(
      expect.arrayContaining([
        'destruction.opened',
        'destruction.approval-given',
        'destruction.batch-shredded',
        'destruction.certificate-issued',
      ]),
    );

    // A second destruction of the same subjects finds nothing left.
    const twice = await request({ kind: 'subjects', subjectIds: doomed });
    expect(twice.status).toBe(422);
    expect((await readJson<Problem>(twice)).code).toBe('nothing-matched');

    await db.execute(sql`
      update destruction_certificates set certificate = jsonb_set(certificate, '{sanitization,subjectsDestroyed}', '2')
      where id = ${cert.id}`);
    const tampered = await readJson<{ valid: boolean; signature: boolean }>(
      await get(`/certificates/${cert.id}/verify`, auditor.key),
    );
    expect(tampered).toMatchObject({ valid: false, signature: false });
  });

  it('ends on a rejection, and on an expired approval window, with nothing destroyed', async () => {
    const seeded = await seedSubjects(api.database, api.keyring, 2);
    const rejected = await readJson<{ id: string }>(await request({ kind: 'subjects', subjectIds: [seeded.ids[0]] }));
    expect((await decide(rejected.id, approverA, 'approve')).status).toBe(200);
    expect((await decide(rejected.id, approverB, 'reject')).status).toBe(200);
    const r = await settled(rejected.id, 'rejected');
    expect(r.outcome).toContain('rejected');
    expect((await decide(rejected.id, approverB, 'approve')).status).toBe(409);

    const expiring = await readJson<{ id: string }>(
      await request({ kind: 'subjects', subjectIds: [seeded.ids[1]] }, { approval: '2 seconds' }),
    );
    expect((await decide(expiring.id, approverA, 'approve')).status).toBe(200);
    await settled(expiring.id, 'expired');
    const late = await decide(expiring.id, approverB, 'approve');
    expect(late.status).toBe(409);
    expect((await readJson<Problem>(late)).code).toBe('destruction-expired');
    expect(await keysOf(seeded.ids)).toBe(2);
    expect(await fieldsOf(seeded.ids)).toBe(8);
  });

  it('excludes a held subject, refuses a request covering only held subjects, and audits hold and release', async () => {
    const seeded = await seedSubjects(api.database, api.keyring, 2);
    const [held, free] = seeded.ids as [string, string];
    const placed = await post('/legal-holds', owner.key, { subjectIds: [held], reason: 'litigation: case 2026-17' });
    expect(placed.status).toBe(201);
    const hold = await readJson<{ id: string; subjects: number }>(placed);
    expect(hold.subjects).toBe(1);
    const [row] = await api.database.db.select().from(subjects).where(eq(subjects.id, held));
    expect(row!.legalHold).toBe(true);

    const onlyHeld = await request({ kind: 'subjects', subjectIds: [held] });
    expect(onlyHeld.status).toBe(422);
    const problem = await readJson<Problem>(onlyHeld);
    expect(problem.code).toBe('all-subjects-held');
    expect(problem.detail).toContain('legal hold');

    const both = await readJson<{ id: string; matched: number; held: number; targeted: number }>(
      await request({ kind: 'subjects', subjectIds: [held, free] }),
    );
    expect(both).toMatchObject({ matched: 2, held: 1, targeted: 1 });
    await decide(both.id, approverA, 'approve');
    await decide(both.id, approverB, 'approve');
    await settled(both.id, 'completed');
    expect(await keysOf([held])).toBe(1);
    expect(await keysOf([free])).toBe(0);

    const released = await post(`/legal-holds/${hold.id}/release`, owner.key, { reason: 'case closed' });
    expect(released.status).toBe(200);
    expect((await post(`/legal-holds/${hold.id}/release`, owner.key, { reason: 'case closed' })).status).toBe(409);
    const [after] = await api.database.db.select().from(subjects).where(eq(subjects.id, held));
    expect(after!.legalHold).toBe(false);
    const actions = (
      await api.database.db
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.targetType, 'legal-hold'), eq(auditLog.targetId, hold.id)))
        .orderBy(auditLog.seq)
    ).map((e) => e.action);
    expect(actions).toEqual(['legal-hold.placed', 'legal-hold.released']);
    expect((await post('/legal-holds', owner.key, { reason: 'no subjects named' })).status).toBe(400);
  });

  it('cancels during the grace window: nothing destroyed, audited', async () => {
    const seeded = await seedSubjects(api.database, api.keyring, 1);
    const started = await readJson<{ id: string }>(
      await request({ kind: 'subjects', subjectIds: seeded.ids }, { grace: '10 minutes' }),
    );
    await decide(started.id, approverA, 'approve');
    await decide(started.id, approverB, 'approve');
    await settled(started.id, 'grace');
    const cancel = await post(`/destructions/${started.id}/cancel`, owner.key, { reason: 'customer re-engaged' });
    expect(cancel.status).toBe(200);
    await settled(started.id, 'cancelled');
    expect(await keysOf(seeded.ids)).toBe(1);
    const audited = await api.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.targetId, started.id), eq(auditLog.action, 'destruction.cancelled')));
    expect(audited).toHaveLength(1);
    expect((await post(`/destructions/${started.id}/cancel`, owner.key, { reason: 'again' })).status).toBe(409);
  });

  it('deletes named fields and keeps the subject (field scope)', async () => {
    const seeded = await seedSubjects(api.database, api.keyring, 2);
    const started = await readJson<{ id: string; targeted: number }>(
      await request({ kind: 'fields', fields: ['phone', 'email'], subjectIds: seeded.ids }),
    );
    expect(started.targeted).toBe(2);
    await decide(started.id, approverA, 'approve');
    await decide(started.id, approverB, 'approve');
    const done = await settled(started.id, 'completed');
    expect(done).toMatchObject({ keysDestroyed: 0, fieldRowsDeleted: 4 });
    expect(done.certificate!.certificate.sanitization).toMatchObject({ fieldsDeleted: { email: 2, phone: 2 } });
    const left = await api.database.db.select().from(subjectFields).where(inArray(subjectFields.subjectId, seeded.ids));
    expect(left.map((f) => f.field).sort()).toEqual(['name', 'name', 'segment', 'segment']);
    expect(await keysOf(seeded.ids)).toBe(2);
  });

  it('flags a later import of a destroyed subject’s external reference', async () => {
    const seeded = await seedSubjects(api.database, api.keyring, 1);
    const [before] = await api.database.db.select().from(subjects).where(eq(subjects.id, seeded.ids[0]!));
    const started = await readJson<{ id: string }>(
      await request({ kind: 'subjects', subjectIds: seeded.ids }, { grace: '1 second' }),
    );
    await decide(started.id, approverA, 'approve');
    await decide(started.id, approverB, 'approve');
    await settled(started.id, 'completed');

    const line = JSON.stringify({ externalRef: before!.externalRef, jurisdiction: 'CN', fields: { name: 'Again' } });
    for (const mode of ['insert', 'upsert']) {
      const res = await api.app.request(`/v1/subject-imports?mode=${mode}`, {
        method: 'POST',
        headers: { ...bearer(owner.key), 'content-type': 'application/x-ndjson' },
        body: `${line}\n`,
      });
      expect(res.status).toBe(202);
      const { id } = await readJson<{ id: string }>(res);
      const done = await waitFor(async () => {
        const [row] = await api.database.db.select().from(subjectImports).where(eq(subjectImports.id, id));
        return row?.status === 'completed' ? row : undefined;
      }, `import ${id}`);
      expect(done).toMatchObject({ imported: 0, rejected: 1 });
      const rejects = await api.database.db.select().from(importRejects).where(eq(importRejects.importId, id));
      expect(rejects.map((r) => r.reason)).toEqual(['subject_destroyed']);
    }
    const again = await api.database.db.select().from(subjects).where(eq(subjects.externalRef, before!.externalRef));
    expect(again).toHaveLength(0);
  });

  it('keeps the reason, comments and cancellation reason out of workflow history, and shows them joined back', async () => {
    const seeded = await seedSubjects(api.database, api.keyring, 1);
    const marks = {
      reason: `reason-mark-${randomUUID()}`,
      approve: `comment-mark-${randomUUID()}`,
      twice: `comment-mark-${randomUUID()}`,
      reject: `comment-mark-${randomUUID()}`,
      cancel: `cancel-mark-${randomUUID()}`,
      refused: `refused-mark-${randomUUID()}`,
    };
    const res = await post('/destructions', owner.key, {
      scope: { kind: 'subjects', subjectIds: seeded.ids },
      reason: `customer Wang Fang asked us: ${marks.reason}`,
      approvalWindow: '1 minute',
      graceWindow: '10 minutes',
    });
    expect(res.status).toBe(202);
    const { id } = await readJson<{ id: string }>(res);
    const comment = (decision: string, text: string) => ({ decision, comment: text });
    expect((await post(`/destructions/${id}/approvals`, approverA.key, comment('approve', marks.approve))).status).toBe(
      200,
    );
    // Counted once: the second comment is not taken, and not kept.
    const again = await post(`/destructions/${id}/approvals`, approverA.key, comment('approve', marks.twice));
    expect(await readJson<{ counted: boolean }>(again)).toMatchObject({ counted: false });
    // Refused (409): its comment is not kept either.
    expect((await post(`/destructions/${id}/approvals`, approverA.key, comment('reject', marks.reject))).status).toBe(
      409,
    );
    expect((await post(`/destructions/${id}/approvals`, approverB.key, comment('approve', 'fine'))).status).toBe(200);
    await settled(id, 'grace');
    expect((await post(`/destructions/${id}/cancel`, owner.key, { reason: marks.cancel })).status).toBe(200);
    const done = await settled(id, 'cancelled');
    expect((await post(`/destructions/${id}/cancel`, owner.key, { reason: marks.refused })).status).toBe(409);

    expect(done.reason).toBe(`customer Wang Fang asked us: ${marks.reason}`);
    expect(done.approvals.map((a) => a.comment)).toEqual([marks.approve, 'fine']);
    expect(done.cancelReason).toBe(marks.cancel);
    const kept = (await api.database.db.select().from(processTexts).where(eq(processTexts.processId, id))).map(
      (t) => t.body,
    );
    expect(kept.sort()).toEqual(
      [marks.approve, marks.cancel, `customer Wang Fang asked us: ${marks.reason}`, 'fine'].sort(),
    );

    // Every payload of the history, decoded with the codec: IDs only.
    const history = await api.temporal.workflow.getHandle(destructionWorkflowId(id)).fetchHistory();
    const payloads: Payload[] = [];
    const collect = (x: unknown): void => {
      if (!x || typeof x !== 'object') return;
      if ('data' in x && x.data instanceof Uint8Array && 'metadata' in x) payloads.push(x as Payload);
      else for (const v of Object.values(x)) collect(v);
    };
    collect(history);
    const decoded = await api.testTemporal.dataConverter.payloadCodecs[0]!.decode(payloads);
    const plain = decoded.map((p) => Buffer.from(p.data ?? []).toString('utf8')).join('\n');
    const [row] = await api.database.db.select().from(destructions).where(eq(destructions.id, id));
    // The decoding worked: the input's reason text ID and an approval's comment text ID are there.
    expect(plain).toContain(row!.reasonTextId!);
    expect(plain).toContain(row!.approvals[0]!.commentTextId!);
    for (const mark of [...Object.values(marks), 'Wang Fang'])
      expect(plain.includes(mark), `history holds ${mark}`).toBe(false);
    const audit = JSON.stringify(
      (await api.database.db.select().from(auditLog).where(eq(auditLog.targetId, id))).map((a) => a.details),
    );
    for (const mark of Object.values(marks)) expect(audit.includes(mark), `audit holds ${mark}`).toBe(false);
  });

  it('refuses bad input naming the field', async () => {
    const res = await post('/destructions', owner.key, {
      scope: { kind: 'subjects', subjectIds: ['nope'] },
      reason: 'x',
    });
    expect(res.status).toBe(400);
    const fields = (await readJson<Problem>(res)).fields!.map((f) => f.path);
    expect(fields).toEqual(expect.arrayContaining(['scope.subjectIds.0', 'reason']));
    const unanchored = await post('/destructions', owner.key, {
      scope: { kind: 'fields', fields: ['email'] },
      reason: 'expired',
    });
    expect(unanchored.status).toBe(400);
    expect((await readJson<Problem>(unanchored)).fields!.map((f) => f.path)).toEqual(['scope.fields.0']);
  });
});
