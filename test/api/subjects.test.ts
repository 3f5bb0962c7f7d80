import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stagedFilePath } from '../../activities/import-staging';
import { createApp, type App } from '../../api/app';
import { importWorkflowId } from '../../domain/ids';
import { createLogger } from '../../runtime/logger';
import { bearer, grantSensitiveReveal, readJson, seedPrincipal, type Problem } from '../helpers/api';
import { createTestApp, createTestWorker, type TestApp } from '../helpers/services';
import { badLines, fakeSubject } from '../helpers/subject-files';

interface SubjectBody {
  id: string;
  externalRef: string;
  fields: Record<string, { classification: string; value: unknown; masked: boolean }>;
  reveal?: { purpose: string; revealed: string[]; withheld: string[] };
}
interface ImportBody {
  status: string;
  total: number;
  imported: number;
  rejected: number;
  duplicates: number;
  ratePerSecond: number;
  rejects: { line: number; reason: string; message: string }[];
}

let api: TestApp;
let app: App;
let worker: Worker;
let running: Promise<void>;
let stagingDir: string;
let owner: string;
let auditor: string;
let ownerId: string;
let ownerKeyId: string;
let subjectId: string;
let logLines: string[];

const ndjson = (key: string) => ({ ...bearer(key), 'content-type': 'application/x-ndjson' });
const get = (path: string, key: string) => app.request(path, { headers: bearer(key) });

const waitForImport = async (id: string): Promise<ImportBody> => {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const body = await readJson<ImportBody>(await get(`/v1/subject-imports/${id}`, owner));
    if (body.status !== 'running') return body;
    if (Date.now() > deadline) throw new Error(`import ${id} still running`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

beforeAll(async () => {
  api = await createTestApp();
  ({ app, stagingDir, logLines } = api);
  worker = await createTestWorker(api);
  running = worker.run();
  ({ key: owner, userId: ownerId, keyId: ownerKeyId } = await seedPrincipal(api.database.db, 'owner'));
  ({ key: auditor } = await seedPrincipal(api.database.db, 'auditor'));
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await api?.close();
});

describe('POST /v1/subject-imports', () => {
  it('refuses a body that is not NDJSON with 415 or 400 at once, staging nothing', async () => {
    const wrongType = await app.request('/v1/subject-imports', { method: 'POST', headers: bearer(owner), body: '[]' });
    expect(wrongType.status).toBe(415);
    const csv = await app.request('/v1/subject-imports', {
      method: 'POST',
      headers: ndjson(owner),
      body: 'ref,name\n1,x\n',
    });
    expect(csv.status).toBe(400);
    expect((await readJson<Problem>(csv)).detail).toMatch(/not NDJSON/);
    const denied = await app.request('/v1/subject-imports', { method: 'POST', headers: ndjson(auditor), body: '{}\n' });
    expect(denied.status).toBe(403);
    expect(existsSync(stagingDir) ? await readdir(stagingDir) : []).toEqual([]);
  });

  it('imports a file and reports counts, rate and rejects by line and reason', async () => {
    const lines = Array.from({ length: 40 }, (_, i) => JSON.stringify(fakeSubject(i, 'API')));
    const bad = badLines((k) => `API-${String(k).padStart(6, '0')}`);
    lines.splice(10, 0, bad[0]!.text, bad[6]!.text);
    const res = await app.request('/v1/subject-imports', {
      method: 'POST',
      headers: ndjson(owner),
      body: `${lines.join('\n')}\n`,
    });
    expect(res.status).toBe(202);
    const { id } = await readJson<{ id: string }>(res);
    const done = await waitForImport(id);
    expect(done).toMatchObject({ status: 'completed', total: 42, imported: 40, rejected: 2, duplicates: 0 });
    expect(done.ratePerSecond).toBeGreaterThan(0);
    expect(done.rejects).toEqual([
      { line: 11, reason: 'invalid_json', message: 'line is not valid JSON' },
      { line: 12, reason: 'missing_external_ref', message: 'externalRef is missing' },
    ]);
    expect(logLines.join('\n')).not.toMatch(/测试用户|example\.com/);
  });

  it('streams a 200 MB body to staging without holding it in memory', { timeout: 120_000 }, async () => {
    const chunk = Buffer.from(`${JSON.stringify(fakeSubject(1, 'BIG'))}\n`.repeat(2000));
    const total = 200 * 2 ** 20;
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= total) return controller.close();
        controller.enqueue(chunk);
        sent += chunk.length;
      },
    });
    const heapBefore = process.memoryUsage().heapUsed;
    let heapPeak = heapBefore;
    const sampler = setInterval(() => (heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed)), 20);
    const paused = api.testTemporal.taskQueue('no-worker');
    const idle = createApp({
      ...api,
      config: { ...api.config, TEMPORAL_TASK_QUEUE: paused },
      logger: createLogger('silent'),
    });
    const res = await idle.request('/v1/subject-imports', {
      method: 'POST',
      headers: ndjson(owner),
      body,
      duplex: 'half',
    } as RequestInit);
    clearInterval(sampler);
    expect(res.status).toBe(202);
    const { id } = await readJson<{ id: string }>(res);
    expect(sent).toBeGreaterThanOrEqual(total);
    expect(heapPeak - heapBefore).toBeLessThan(100 * 2 ** 20);
    const status = await readJson<ImportBody>(await get(`/v1/subject-imports/${id}`, owner));
    expect(status).toMatchObject({ status: 'running', imported: 0 });
    const staged = await stat(stagedFilePath(stagingDir, id));
    expect(staged.size).toBe(sent);

    const cancel = await idle.request(`/v1/subject-imports/${id}/cancel`, { method: 'POST', headers: bearer(owner) });
    expect(cancel.status).toBe(202);
    const [requested] = await api.database.sql`
      select actor, workflow_id from audit_log where action = 'subject-import.cancel-requested' and target_id = ${id}`;
    expect(requested).toEqual({ actor: `user:${ownerId}`, workflow_id: importWorkflowId(id) });
    await api.temporal.workflow.getHandle(importWorkflowId(id)).terminate('test over');
    expect((await readJson<ImportBody>(await get(`/v1/subject-imports/${id}`, owner))).status).toBe('failed');
    const again = await idle.request(`/v1/subject-imports/${id}/cancel`, { method: 'POST', headers: bearer(owner) });
    expect(again.status).toBe(409);
    await rm(stagedFilePath(stagingDir, id), { force: true });
  });

  it('answers 404 for an unknown import', async () => {
    expect((await get(`/v1/subject-imports/${randomUUID()}`, owner)).status).toBe(404);
  });
});

describe('GET /v1/subjects', () => {
  beforeAll(async () => {
    const res = await get('/v1/subjects?externalRef=API-000003', owner);
    subjectId = (await readJson<{ items: SubjectBody[] }>(res)).items[0]!.id;
  });

  it('returns classification-aware masked values to owner and auditor', async () => {
    for (const key of [owner, auditor]) {
      const res = await get(`/v1/subjects/${subjectId}`, key);
      expect(res.status).toBe(200);
      const subject = await readJson<SubjectBody>(res);
      expect(subject.externalRef).toBe('API-000003');
      expect(subject.fields).toMatchObject({
        name: { classification: 'personal', value: '测*********', masked: true },
        phone: { classification: 'personal', value: '138****0003', masked: true },
        email: { value: 't***@example.com', masked: true },
        idNumber: { classification: 'sensitive', value: '**************0003', masked: true },
        creditScore: { classification: 'sensitive', value: '******', masked: true },
        city: { classification: 'general', value: 'Testville', masked: false },
      });
    }
  });

  it('reveals for an owner with a catalog purpose, only the fields it covers, audited first', async () => {
    const missing = await get(`/v1/subjects/${subjectId}/reveal`, owner);
    expect(missing.status).toBe(400);
    expect((await readJson<Problem>(missing)).fields).toEqual([{ path: 'purpose', message: expect.any(String) }]);
    expect((await get(`/v1/subjects/${subjectId}/reveal?purpose=curiosity`, owner)).status).toBe(400);
    // The plain read has no reveal parameter: it cannot be widened into one.
    expect((await get(`/v1/subjects/${subjectId}?reveal=1&purpose=customer-service`, owner)).status).toBe(400);

    const res = await get(`/v1/subjects/${subjectId}/reveal?purpose=customer-service`, owner);
    expect(res.status).toBe(200);
    const subject = await readJson<SubjectBody>(res);
    expect(subject.fields.name).toMatchObject({ value: '测试用户000003', masked: false });
    expect(subject.fields.phone).toMatchObject({ value: '13800000003', masked: false });
    expect(subject.fields.idNumber?.masked).toBe(true);
    expect(subject.reveal).toEqual({
      purpose: 'customer-service',
      revealed: ['email', 'name', 'phone'],
      withheld: ['bankAccount', 'creditScore', 'idNumber'],
    });
    const [entry] = await api.database
      .sql`select actor, api_key_id, details from audit_log where action = 'subject.revealed' and target_id = ${subjectId}`;
    expect(entry).toEqual({
      actor: `user:${ownerId}`,
      api_key_id: ownerKeyId,
      details: { fields: ['email', 'name', 'phone'], purpose: 'customer-service' },
    });

    // credit-assessment reaches sensitive fields: refused until the owner holds a reveal grant.
    const ungranted = await get(`/v1/subjects/${subjectId}/reveal?purpose=credit-assessment`, owner);
    expect(ungranted.status).toBe(403);
    expect((await readJson<{ code: string }>(ungranted)).code).toBe('access-grant-required');
    await grantSensitiveReveal(api.database.db, ownerId);
    const credit = await readJson<SubjectBody>(
      await get(`/v1/subjects/${subjectId}/reveal?purpose=credit-assessment`, owner),
    );
    expect(credit.fields.creditScore).toMatchObject({ value: 603, masked: false });
  });

  it('refuses a reveal to an auditor, without an audit entry', async () => {
    const before = await api.database.sql`select count(*)::int n from audit_log where action = 'subject.revealed'`;
    const res = await get(`/v1/subjects/${subjectId}/reveal?purpose=customer-service`, auditor);
    expect(res.status).toBe(403);
    const after = await api.database.sql`select count(*)::int n from audit_log where action = 'subject.revealed'`;
    expect(after[0]!.n).toBe(before[0]!.n);
  });

  it('finds a subject through the blind index by phone, idNumber and email, however written, for a purpose', async () => {
    for (const query of [
      'phone=138%200000%200003&purpose=customer-service',
      'idNumber=990000199001010003&purpose=identity-verification',
      'email=TEST.USER.000003@example.com&purpose=transfer-notice',
    ]) {
      const res = await get(`/v1/subjects/search?${query}`, owner);
      expect(res.status, query).toBe(200);
      expect((await readJson<{ items: SubjectBody[] }>(res)).items.map((s) => s.id)).toEqual([subjectId]);
    }
    const none = await get('/v1/subjects/search?phone=13999999999&purpose=customer-service', owner);
    expect((await readJson<{ items: unknown[] }>(none)).items).toEqual([]);
  });

  it('refuses a blind-index search without a purpose the field names, or with two fields', async () => {
    const missing = await get('/v1/subjects/search?phone=13800000003', owner);
    expect(missing.status).toBe(400);
    expect((await readJson<Problem>(missing)).fields).toEqual([{ path: 'purpose', message: expect.any(String) }]);
    // idNumber may be revealed for credit work, phone may not: a purpose must cover the searched field.
    const uncovered = await get('/v1/subjects/search?phone=13800000003&purpose=credit-assessment', owner);
    expect(uncovered.status).toBe(400);
    expect((await readJson<Problem>(uncovered)).fields).toEqual([{ path: 'purpose', message: expect.any(String) }]);
    expect((await get('/v1/subjects/search?phone=1&idNumber=2&purpose=customer-service', owner)).status).toBe(400);
    expect((await get('/v1/subjects/search?purpose=customer-service', owner)).status).toBe(400);
  });

  it('looks subjects up by externalRef for owner and auditor, and by nothing else there', async () => {
    for (const key of [owner, auditor]) {
      const res = await get('/v1/subjects?externalRef=API-000003', key);
      expect(res.status).toBe(200);
      expect((await readJson<{ items: SubjectBody[] }>(res)).items.map((s) => s.id)).toEqual([subjectId]);
    }
    // The blind-index search moved to its own owner-only route; the lookup does not take its parameters.
    const byPhone = await get('/v1/subjects?phone=13800000003', auditor);
    expect(byPhone.status).toBe(400);
    expect((await readJson<Problem>(byPhone)).fields).toContainEqual({ path: 'phone', message: 'unknown field' });
    expect((await get('/v1/subjects/search?phone=13800000003&purpose=customer-service', auditor)).status).toBe(403);
    expect((await get('/v1/subjects', owner)).status).toBe(400);
  });

  it('answers 404 for an unknown subject and 401 without a key', async () => {
    expect((await get(`/v1/subjects/${randomUUID()}`, owner)).status).toBe(404);
    expect((await app.request(`/v1/subjects/${subjectId}`)).status).toBe(401);
  });
});
