import type { Worker } from '@temporalio/worker';
import { and, eq } from 'drizzle-orm';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLog } from '../../db/schema';
import { bearer, readJson, seedPrincipal, type Problem } from '../helpers/api';
import { insertBackupRow } from '../helpers/backup-rows';
import { seedSubjects } from '../helpers/backups';
import { createTestApp, createTestWorker, type TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';

interface RestoreTest {
  id: string;
  status: string;
  trigger: string;
  rtoMs: number | null;
  rpoMs: number | null;
  reasons: unknown[];
  tables: { table: string; match: boolean }[];
}
interface Backup {
  id: string;
  kind: string;
  status: string;
  phase: string | null;
  bytesDone: number;
  sizeBytes: number | null;
  durationMs: number | null;
  keyringBackupId: string | null;
  restoreTest: { id: string; status: string } | null;
  manifest: { manifest: { tables: { name: string; bytes: number }[] }; signature: { algorithm: string } } | null;
  restoreTests: RestoreTest[];
}

const dir = mkdtempSync(join(tmpdir(), 'custodian-api-backups-'));
let api: TestApp;
let worker: Worker;
let running: Promise<void>;
let owner: { key: string; userId: string; keyId: string };
let auditorKey: string;
let responderKey: string;

beforeAll(async () => {
  api = await createTestApp({ config: { BACKUP_DIR: dir } });
  worker = await createTestWorker(api);
  running = worker.run();
  owner = await seedPrincipal(api.database.db, 'owner');
  ({ key: auditorKey } = await seedPrincipal(api.database.db, 'auditor'));
  ({ key: responderKey } = await seedPrincipal(api.database.db, 'responder'));
  await seedSubjects(api.testDatabase, api.keyring, 5_000);
}, 120_000);
afterAll(async () => {
  worker?.shutdown();
  await running;
  await api?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Without a body, no content type either (as `curl -X POST` sends it). */
const post = (path: string, body?: unknown, headers: Record<string, string> = {}, key = owner.key) =>
  api.app.request(path, {
    method: 'POST',
    headers: body === undefined ? { authorization: `Bearer ${key}`, ...headers } : { ...bearer(key), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
const get = (path: string, key = owner.key) => api.app.request(path, { headers: bearer(key) });
const getBackup = async (id: string) => readJson<Backup>(await get(`/v1/backups/${id}`));

describe('backups API', () => {
  let backupId: string;

  it('POST /v1/backups starts backup-{id} (202), honours Idempotency-Key, and GET shows progress then the evidence', async () => {
    const res = await post('/v1/backups', undefined, { 'idempotency-key': 'nightly-1' });
    expect(res.status).toBe(202);
    const started = await readJson<{ id: string; workflowId: string }>(res);
    backupId = started.id;
    expect(started.workflowId).toBe(`backup-${backupId}`);

    const again = await post('/v1/backups', undefined, { 'idempotency-key': 'nightly-1' });
    expect(again.status).toBe(200);
    expect((await readJson<{ id: string }>(again)).id).toBe(backupId);
    const other = await post('/v1/backups', { restoreTest: false }, { 'idempotency-key': 'nightly-1' });
    expect(other.status).toBe(409);

    // While it runs, the row shows what it is doing.
    const exporting = await waitFor(async () => {
      const b = await getBackup(backupId);
      return b.phase === 'export' ? b : undefined;
    }, 'the export phase');
    expect(exporting).toMatchObject({ status: 'running', kind: 'data' });
    expect(typeof exporting.bytesDone).toBe('number');

    const done = await waitFor(
      async () => {
        const b = await getBackup(backupId);
        return b.restoreTests[0]?.status === 'pass' ? b : undefined;
      },
      'the backup restore-tested',
      120_000,
    );
    expect(done).toMatchObject({ status: 'verified', phase: 'done', restoreTest: { status: 'pass' } });
    expect(done.bytesDone).toBe(done.manifest!.manifest.tables.reduce((sum, t) => sum + t.bytes, 0));
    expect(done.sizeBytes).toBeGreaterThan(0);
    expect(done.durationMs).toBeGreaterThan(0);
    expect(done.manifest!.signature.algorithm).toBe('Ed25519');
    expect(done.restoreTests[0]).toMatchObject({ trigger: 'after-backup', reasons: [] });
    expect(done.restoreTests[0]!.rtoMs).toBeGreaterThan(0);
    expect(done.restoreTests[0]!.tables.every((t) => t.match)).toBe(true);

    const keyring = await getBackup(done.keyringBackupId!);
    expect(keyring).toMatchObject({ kind: 'keyring', status: 'completed' });

    const [requested] = await api.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, 'backup.requested'), eq(auditLog.targetId, backupId)));
    expect(requested).toMatchObject({ actor: `user:${owner.userId}`, apiKeyId: owner.keyId });
  }, 180_000);

  it('GET /v1/backups lists status, size, duration and the latest restore test; auditors read too', async () => {
    const res = await get('/v1/backups?kind=data', auditorKey);
    expect(res.status).toBe(200);
    const { backups } = await readJson<{ backups: Backup[] }>(res);
    expect(backups.find((b) => b.id === backupId)).toMatchObject({
      status: 'verified',
      restoreTest: { status: 'pass' },
      sizeBytes: expect.any(Number),
      durationMs: expect.any(Number),
    });
    expect(backups.every((b) => b.kind === 'data')).toBe(true);
  });

  it('POST /v1/backups/{id}/restore-tests runs another restore test (202); the backup shows both', async () => {
    const res = await post(`/v1/backups/${backupId.toUpperCase()}/restore-tests`);
    expect(res.status).toBe(202);
    const { id } = await readJson<{ id: string; workflowId: string }>(res);
    const b = await waitFor(
      async () => {
        const found = await getBackup(backupId);
        return found.restoreTests.find((t) => t.id === id && t.status !== 'running') ? found : undefined;
      },
      'the second restore test',
      120_000,
    );
    expect(b.restoreTests).toHaveLength(2);
    expect(b.restoreTests.find((t) => t.id === id)).toMatchObject({ status: 'pass', trigger: 'api' });
    expect(b.restoreTest?.id).toBe(id);
  }, 180_000);

  it('refuses: 404 for no such backup, 409 for a failed one, 400 naming the field, 403 by role', async () => {
    expect((await post(`/v1/backups/${crypto.randomUUID()}/restore-tests`)).status).toBe(404);
    expect((await get(`/v1/backups/${crypto.randomUUID()}`)).status).toBe(404);
    const failed = await insertBackupRow(api.database.db, { status: 'failed' });
    const conflict = await post(`/v1/backups/${failed}/restore-tests`);
    expect(conflict.status).toBe(409);
    expect((await readJson<Problem>(conflict)).code).toBe('backup-failed');

    const bad = await post('/v1/backups', { restoreTest: 'yes' });
    expect(bad.status).toBe(400);
    expect((await readJson<Problem>(bad)).fields?.map((f) => f.path)).toContain('restoreTest');
    const extra = await post('/v1/backups', { keepForever: true });
    expect(extra.status).toBe(400);
    const limit = await get('/v1/backups?limit=0');
    expect(limit.status).toBe(400);
    expect((await readJson<Problem>(limit)).fields?.map((f) => f.path)).toContain('limit');

    expect((await post('/v1/backups', undefined, {}, auditorKey)).status).toBe(403);
    expect((await post(`/v1/backups/${backupId}/restore-tests`, undefined, {}, auditorKey)).status).toBe(403);
    expect((await get('/v1/backups', responderKey)).status).toBe(403);
    expect((await get(`/v1/backups/${backupId}`, responderKey)).status).toBe(403);
  });
});
