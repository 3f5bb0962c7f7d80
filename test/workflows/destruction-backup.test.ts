import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from '@temporalio/worker';
import { eq, inArray } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { backupStorageFor } from '../../activities/backup-storage';
import { decryptField } from '../../activities/crypto/field-cipher';
import { dataKeys } from '../../activities/keys';
import { restoreIntoEmptyDatabase } from '../../cli/restore';
import { connect } from '../../db/client';
import { backups, destructionCertificates, subjectFields, subjectKeys } from '../../db/schema';
import { backupWorkflowId, destructionWorkflowId } from '../../domain/ids';
import { withDatabase } from '../../runtime/database-url';
import { backup, destruction } from '../../workflows';
import { seedSubjects, type SeededSubjects } from '../helpers/backups';
import { createTestServices, createTestWorker, type TestServices } from '../helpers/services';

const dir = mkdtempSync(join(tmpdir(), 'custodian-destruction-backup-'));
const admin = postgres(withDatabase(inject('templateDatabaseUrl'), 'postgres'), { max: 1, onnotice: () => {} });
const scratch: string[] = [];

let s: TestServices;
let worker: Worker;
let running: Promise<void>;
let seeded: SeededSubjects;

beforeAll(async () => {
  s = await createTestServices({ config: { BACKUP_DIR: join(dir, 'backups') } });
  worker = await createTestWorker(s);
  running = worker.run();
  seeded = await seedSubjects(s.testDatabase, s.keyring, 20);
}, 180_000);
afterAll(async () => {
  worker?.shutdown();
  await running;
  await s?.close();
  for (const name of scratch) await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
});

const emptyDatabase = async () => {
  const name = `custodian_destruction_${Math.random().toString(16).slice(2, 10)}`;
  await admin.unsafe(`create database "${name}"`);
  scratch.push(name);
  return withDatabase(inject('templateDatabaseUrl'), name);
};

it('a backup taken before a destruction restores ciphertext the destroyed subject’s key no longer opens; every other subject’s still opens', async () => {
  const backupId = randomUUID();
  const keyringBackupId = randomUUID();
  await s.temporal.workflow.execute(backup, {
    taskQueue: s.config.TEMPORAL_TASK_QUEUE,
    workflowId: backupWorkflowId(backupId),
    args: [{ backupId, keyringBackupId, requestedBy: 'test', heartbeatTimeout: '20 seconds', restoreTest: false }],
  });

  const destroyed = seeded.ids.slice(0, 2);
  const kept = seeded.ids.slice(2);
  const destructionId = randomUUID();
  const outcome = await s.temporal.workflow.execute(destruction, {
    taskQueue: s.config.TEMPORAL_TASK_QUEUE,
    workflowId: destructionWorkflowId(destructionId),
    args: [
      {
        destructionId,
        scope: { kind: 'subjects', subjectIds: destroyed },
        reason: 'retention over',
        requestedBy: 'schedule:retention-sweep',
        origin: { kind: 'sweep', sweepId: 'test' },
        approvalWindowMs: 60_000,
        graceMs: 0,
        autoApprove: true,
      },
    ],
  });
  expect(outcome).toMatchObject({ status: 'completed', subjectsDestroyed: 2 });

  // The certificate names the residual copy: the keyring backup holding the destroyed keys, and when it expires.
  const [cert] = await s.database.db
    .select()
    .from(destructionCertificates)
    .where(eq(destructionCertificates.destructionId, destructionId));
  const [keyringRow] = await s.database.db.select().from(backups).where(eq(backups.id, keyringBackupId));
  expect(cert!.certificate).toMatchObject({
    approvals: { automatic: true },
    residualCopies: { keyringBackup: { backupId: keyringBackupId, expiresAt: keyringRow!.retainUntil!.toISOString() } },
  });

  const targetUrl = await emptyDatabase();
  const report = await restoreIntoEmptyDatabase({
    storage: backupStorageFor(s.config),
    keyring: s.keyring,
    backupId,
    targetUrl,
    keyringBackupId: null,
  });
  expect(report.tables.find((t) => t.table === 'subject_keys')).toBeUndefined();
  const restored = connect(targetUrl, { max: 1 });
  try {
    // The data backup holds no wrapped key at all; the destroyed subjects' ciphertext came back with it.
    expect(await restored.db.select().from(subjectKeys)).toHaveLength(0);
    const fields = await restored.db
      .select()
      .from(subjectFields)
      .where(inArray(subjectFields.subjectId, seeded.ids))
      .then((rows) => rows.filter((f) => f.field === 'email'));
    expect(fields).toHaveLength(20);
    const current = await dataKeys({ db: s.database.db, keyring: s.keyring }).loadDataKeys(seeded.ids);
    for (const f of fields) {
      const key = current.get(f.subjectId);
      const ref = { subjectId: f.subjectId, field: 'email', keyVersion: f.keyVersion! };
      if (destroyed.includes(f.subjectId)) {
        expect(key).toBeUndefined();
        // Not with any other subject's key either: the AAD binds the subject.
        const other = current.get(kept[0]!)!;
        expect(() => decryptField(other.dek, { ...ref, keyVersion: other.keyVersion }, f.ciphertext!)).toThrow();
      } else {
        expect(decryptField(key!.dek, ref, f.ciphertext!)).toMatch(/@known-personal\.example$/);
      }
    }
  } finally {
    await restored.close();
  }
}, 180_000);
