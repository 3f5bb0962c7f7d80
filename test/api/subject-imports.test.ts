import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importWorkflowId } from '../../domain/ids';
import { bearer, readJson, seedPrincipal, type Problem } from '../helpers/api';
import { createTestApp, type TestApp } from '../helpers/services';
import { fakeSubject } from '../helpers/subject-files';

// No worker polls this app's task queue: started imports stay running, which is what these tests need.
let api: TestApp;
let owner: { key: string; userId: string; keyId: string };
const started: string[] = [];

beforeAll(async () => {
  api = await createTestApp();
  owner = await seedPrincipal(api.database.db, 'owner');
});
afterAll(async () => {
  for (const id of started) {
    await api.temporal.workflow
      .getHandle(importWorkflowId(id))
      .terminate('test over')
      .catch(() => {});
  }
  await api?.close();
});

const file = (...refs: number[]) => refs.map((i) => JSON.stringify(fakeSubject(i, 'IDEM'))).join('\n') + '\n';
const postImport = async (body: string, headers: Record<string, string> = {}) => {
  const res = await api.app.request('/v1/subject-imports', {
    method: 'POST',
    headers: { ...bearer(owner.key), 'content-type': 'application/x-ndjson', ...headers },
    body,
  });
  if (res.status === 202) started.push((await readJson<{ id: string }>(res.clone())).id);
  return res;
};
const workflowsOf = async (id: string) => {
  const ids: string[] = [];
  for await (const w of api.temporal.workflow.list({ query: `WorkflowId = '${importWorkflowId(id)}'` }))
    ids.push(w.runId);
  return ids;
};

describe('POST /v1/subject-imports with Idempotency-Key', () => {
  it('returns the first import for a retry, 409 for the same key with another file, and audits who asked', async () => {
    const key = `retry-${randomUUID()}`;
    const first = await postImport(file(1, 2), { 'idempotency-key': key });
    expect(first.status).toBe(202);
    const { id } = await readJson<{ id: string }>(first);

    const retry = await postImport(file(1, 2), { 'idempotency-key': key });
    expect(retry.status).toBe(200);
    expect(await retry.json()).toEqual({ id });

    const other = await postImport(file(3), { 'idempotency-key': key });
    expect(other.status).toBe(409);
    expect(other.headers.get('content-type')).toBe('application/problem+json');
    expect((await readJson<Problem>(other)).code).toBe('idempotency-key-reused');

    // One workflow, and only its staged file: the retry's upload was removed.
    expect(await workflowsOf(id)).toHaveLength(1);
    expect((await readdir(api.stagingDir)).filter((f) => !f.startsWith(id))).toEqual([]);
    const [requested] = await api.database.sql`
      select actor, api_key_id, workflow_id, run_id from audit_log
      where action = 'subject-import.requested' and target_id = ${id}`;
    expect(requested).toEqual({
      actor: `user:${owner.userId}`,
      api_key_id: owner.keyId,
      workflow_id: importWorkflowId(id),
      run_id: (await workflowsOf(id))[0],
    });
    await expect(api.metrics.registry.getSingleMetricAsString('workflow_starts_total')).resolves.toContain(
      'workflow_type="subjectImport"} 1',
    );
  });

  it('starts a new import for a new key or no key, and refuses a malformed key naming the header', async () => {
    const a = await postImport(file(4), { 'idempotency-key': `a-${randomUUID()}` });
    const b = await postImport(file(4), { 'idempotency-key': `b-${randomUUID()}` });
    const c = await postImport(file(4));
    expect([a.status, b.status, c.status]).toEqual([202, 202, 202]);
    const ids = await Promise.all([a, b, c].map(async (r) => (await readJson<{ id: string }>(r)).id));
    expect(new Set(ids).size).toBe(3);

    const bad = await postImport(file(5), { 'idempotency-key': 'has spaces in it' });
    expect(bad.status).toBe(400);
    expect((await readJson<Problem>(bad)).fields?.map((f) => f.path)).toEqual(['idempotency-key']);
  });
});

describe('GET /v1/subject-imports/{id}', () => {
  it('reads a terminated import as failed with the reason at once, before the sweep records it', async () => {
    const { id } = await readJson<{ id: string }>(await postImport(file(7)));
    await api.temporal.workflow.getHandle(importWorkflowId(id)).terminate('operator');
    const res = await api.app.request(`/v1/subject-imports/${id}`, { headers: bearer(owner.key) });
    expect(await readJson<{ status: string; error: string | null }>(res)).toMatchObject({
      status: 'failed',
      error: 'terminated',
    });
  });
});

describe('POST /v1/subject-imports/{id}/cancel', () => {
  it('normalises an upper-case ID before it writes anything', async () => {
    const res = await postImport(file(6));
    const { id } = await readJson<{ id: string }>(res);
    const cancel = await api.app.request(`/v1/subject-imports/${id.toUpperCase()}/cancel`, {
      method: 'POST',
      headers: bearer(owner.key),
    });
    expect(cancel.status).toBe(202);
    expect(await cancel.json()).toEqual({ id });
    const entries = await api.database.sql`
      select target_id, workflow_id from audit_log where action = 'subject-import.cancel-requested' and target_id ilike ${id}`;
    expect(entries).toEqual([{ target_id: id, workflow_id: importWorkflowId(id) }]);

    const unknown = randomUUID().toUpperCase();
    const before = await api.database.sql`select count(*)::int as n from audit_log`;
    const missing = await api.app.request(`/v1/subject-imports/${unknown}/cancel`, {
      method: 'POST',
      headers: bearer(owner.key),
    });
    expect(missing.status).toBe(404);
    expect(await api.database.sql`select count(*)::int as n from audit_log`).toEqual(before);
  });

  it('answers 409, not 500, when the workflow closed between the read and the cancel, and audits nothing', async () => {
    // The record still says running, but Temporal has no such workflow any more (closed and gone).
    const id = randomUUID();
    await api.database.sql`
      insert into subject_imports (id, mode, requested_by, staged_bytes, total_lines)
      values (${id}, 'insert', 'test', 1, 1)`;
    const before = await api.database.sql`select count(*)::int as n from audit_log`;
    const res = await api.app.request(`/v1/subject-imports/${id}/cancel`, {
      method: 'POST',
      headers: bearer(owner.key),
    });
    expect(res.status).toBe(409);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect((await readJson<Problem>(res)).code).toBe('import-finished');
    expect(await api.database.sql`select count(*)::int as n from audit_log`).toEqual(before);
  });
});
