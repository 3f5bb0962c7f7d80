import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from '@temporalio/worker';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listAudit } from '../../activities/audit';
import { digestTable } from '../../activities/backup-copy';
import {
  backupObjectKey,
  backupStorageFor,
  manifestObjectKey,
  type BackupStorage,
} from '../../activities/backup-storage';
import { alerts, backups, incidents, restoreTests } from '../../db/schema';
import {
  BACKUP_FRAME_BYTES,
  type BackupResult,
  type RestoreTestReason,
  type RestoreTestResult,
} from '../../domain/backup';
import { backupWorkflowId, incidentWorkflowId, restoreTestWorkflowId } from '../../domain/ids';
import { backup, restoreTest } from '../../workflows';
import { decryptBackup, seedSubjects, type SeededSubjects } from '../helpers/backups';
import { pagesOf, seedPolicy, seedStaff, user } from '../helpers/incidents';
import { createTestServices, createTestWorker, type TestServices } from '../helpers/services';
import { waitFor } from '../helpers/wait';

const SUBJECTS = 20_000;
const SEALED_FRAME = BACKUP_FRAME_BYTES + 16;

let s: TestServices;
let worker: Worker;
let running: Promise<void>;
let storage: BackupStorage;
let seeded: SeededSubjects;
const dir = mkdtempSync(join(tmpdir(), 'custodian-backup-'));

beforeAll(async () => {
  s = await createTestServices({ config: { BACKUP_DIR: dir } });
  worker = await createTestWorker(s);
  running = worker.run();
  storage = backupStorageFor(s.config);
  seeded = await seedSubjects(s.testDatabase, s.keyring, SUBJECTS);
}, 300_000);

afterAll(async () => {
  worker?.shutdown();
  await running;
  await s?.close();
  rmSync(dir, { recursive: true, force: true });
});

const runBackup = (o: { restoreTest?: boolean } = {}) => {
  const backupId = randomUUID();
  const keyringBackupId = randomUUID();
  return s.temporal.workflow.execute(backup, {
    taskQueue: s.config.TEMPORAL_TASK_QUEUE,
    workflowId: backupWorkflowId(backupId),
    args: [{ backupId, keyringBackupId, requestedBy: 'test', heartbeatTimeout: '20 seconds', ...o }],
  });
};

const runRestoreTest = (backupId: string) => {
  const restoreTestId = randomUUID();
  return s.temporal.workflow.execute(restoreTest, {
    taskQueue: s.config.TEMPORAL_TASK_QUEUE,
    workflowId: restoreTestWorkflowId(restoreTestId),
    args: [{ restoreTestId, backupId, trigger: 'api', requestedBy: 'test' }],
  });
};

const backupRow = async (id: string) => (await s.database.db.select().from(backups).where(eq(backups.id, id)))[0]!;

describe('backup of 20,000 subjects, then its restore test', () => {
  let result: BackupResult;

  beforeAll(async () => {
    result = await runBackup();
  }, 180_000);

  it('passes: every table restored with the rows and SHA-256 of the manifest, RTO and RPO recorded', async () => {
    expect(result.status).toBe('verified');
    expect(result.restoreTest?.status).toBe('pass');
    expect(result.restoreTest?.reasons).toEqual([]);

    const data = await backupRow(result.backupId);
    expect(data).toMatchObject({ kind: 'data', status: 'verified', phase: 'done', lastRestoreTestStatus: 'pass' });
    expect(data.sizeBytes).toBeGreaterThan(SEALED_FRAME * 4);
    const { manifest } = data.manifest as { manifest: { tables: { name: string; rows: number; sha256: string }[] } };
    const names = manifest.tables.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['subjects', 'subject_fields', 'audit_log', 'backups', 'alerts']));
    expect(names).not.toContain('subject_keys');
    expect(manifest.tables.find((t) => t.name === 'subjects')?.rows).toBe(SUBJECTS);
    expect(manifest.tables.find((t) => t.name === 'subject_fields')?.rows).toBe(SUBJECTS * 4);

    // The manifest's hash is the live table's, computed the same way (subjects has not changed since).
    const live = await s.testDatabase.sql.begin(async (tx) => {
      const { applyCopySettings } = await import('../../activities/backup-copy');
      await applyCopySettings(tx);
      const shape = (
        data.manifest as { manifest: { tables: Parameters<typeof digestTable>[1][] } }
      ).manifest.tables.find((t) => t.name === 'subjects')!;
      return digestTable(tx, shape);
    });
    expect(live.sha256).toBe(manifest.tables.find((t) => t.name === 'subjects')?.sha256);

    const [test] = await s.database.db.select().from(restoreTests).where(eq(restoreTests.backupId, result.backupId));
    expect(test).toMatchObject({ status: 'pass', trigger: 'after-backup', reasons: [] });
    expect(test!.rtoMs).toBeGreaterThan(0);
    expect(test!.rpoMs).toBeGreaterThanOrEqual(0);
    const tables = test!.tables as { table: string; match: boolean; restoredRows: number; expectedRows: number }[];
    expect(tables.map((t) => t.table)).toEqual(names);
    expect(tables.every((t) => t.match && t.restoredRows === t.expectedRows)).toBe(true);

    const keyring = await backupRow(result.keyringBackupId);
    expect(keyring).toMatchObject({ kind: 'keyring', status: 'completed', dataBackupId: result.backupId });
    expect(keyring.retainUntil!.getTime() - keyring.finishedAt!.getTime()).toBe(7 * 24 * 3600_000);
    const keyManifest = (
      keyring.manifest as { manifest: { tables: { name: string; rows: number }[]; snapshot: unknown } }
    ).manifest;
    expect(keyManifest.tables).toEqual([expect.objectContaining({ name: 'subject_keys', rows: SUBJECTS })]);
    // One snapshot for both.
    expect(keyManifest.snapshot).toEqual((data.manifest as { manifest: { snapshot: unknown } }).manifest.snapshot);

    const audit = await listAudit(s.database.db, { targetType: 'backup', targetId: result.backupId, limit: 50 });
    expect(audit.map((e) => e.action)).toEqual(
      expect.arrayContaining(['backup.started', 'backup.completed', 'restore-test.started', 'restore-test.passed']),
    );
    for (const e of audit) expect(e.workflowId).toMatch(/^(backup|restore-test)-/);
  });

  it('writes no plaintext personal value and no wrapped data key into the backup files', async () => {
    const file = await readFile(join(dir, backupObjectKey(result.backupId)));
    const keyFile = await readFile(join(dir, backupObjectKey(result.keyringBackupId)));
    for (const value of seeded.personalValues) {
      expect(file.includes(value)).toBe(false);
      expect(keyFile.includes(value)).toBe(false);
    }
    for (const wrapped of seeded.wrappedKeys.slice(0, 200)) {
      expect(file.includes(wrapped)).toBe(false);
      expect(file.includes(wrapped.toString('hex'))).toBe(false);
      expect(keyFile.includes(wrapped.toString('hex'))).toBe(false);
    }

    // Decrypted, the data backup holds ciphertext of the values and no wrapped key; the keyring backup holds them all.
    const { plaintext } = await decryptBackup(storage, s.keyring, result.backupId);
    const text = plaintext.toString('utf8');
    expect(text).toContain(seeded.ids[0]);
    for (const value of seeded.personalValues) expect(text.includes(value)).toBe(false);
    const hexes = new Set(text.match(/\\\\x[0-9a-f]+/g)?.map((h) => h.slice(3)));
    expect(hexes.size).toBeGreaterThan(SUBJECTS); // field ciphertexts are bytea
    expect(seeded.wrappedKeys.filter((k) => hexes.has(k.toString('hex')))).toEqual([]);
    const keys = (await decryptBackup(storage, s.keyring, result.keyringBackupId)).plaintext.toString('utf8');
    const keyHexes = new Set(keys.match(/\\\\x[0-9a-f]+/g)?.map((h) => h.slice(3)));
    expect(seeded.wrappedKeys.every((k) => keyHexes.has(k.toString('hex')))).toBe(true);
  });
});

describe('a damaged backup fails its restore test with a precise reason and pages', () => {
  let backupId: string;
  let original: Buffer;
  let originalManifest: Buffer;
  const file = () => join(dir, backupObjectKey(backupId));
  const manifestFile = () => join(dir, manifestObjectKey(backupId));

  beforeAll(async () => {
    const result = await runBackup({ restoreTest: false });
    expect(result.status).toBe('completed');
    backupId = result.backupId;
    original = await readFile(file());
    originalManifest = await readFile(manifestFile());
    expect(original.length).toBeGreaterThan(SEALED_FRAME * 4);
  }, 180_000);

  const damaged = async (damage: () => Promise<void>): Promise<RestoreTestResult> => {
    await damage();
    try {
      return await runRestoreTest(backupId);
    } finally {
      await writeFile(file(), original);
      await writeFile(manifestFile(), originalManifest);
    }
  };

  const expectPaged = async (r: RestoreTestResult) => {
    expect(r.status).toBe('fail');
    expect((await backupRow(backupId)).status).toBe('restore-test-failed');
    const [alert] = await s.database.db
      .select()
      .from(alerts)
      .where(
        and(
          eq(alerts.kind, 'restore-test-failed'),
          eq(
            alerts.idempotencyKey,
            `alert:restore-test-failed:backup:${backupId}:${restoreTestWorkflowId(r.restoreTestId)}`,
          ),
        ),
      );
    expect(alert).toMatchObject({ targetType: 'backup', targetId: backupId, status: 'sent' });
    expect(alert!.reason).toContain(r.reasons[0]!.code);
    const audit = await listAudit(s.database.db, { targetType: 'backup', targetId: backupId, limit: 200 });
    const actions = audit.filter((e) => (e.details as { restoreTestId?: string }).restoreTestId === r.restoreTestId);
    expect(actions.map((e) => e.action)).toEqual(
      expect.arrayContaining(['restore-test.started', 'restore-test.failed', 'alert.raised']),
    );
  };

  const codes = (reasons: RestoreTestReason[]) => reasons.map((r) => r.code);

  it('one flipped bit in frame 2: that frame fails authentication', async () => {
    const r = await damaged(async () => {
      const bytes = Buffer.from(original);
      bytes[2 * SEALED_FRAME + 1234]! ^= 0x08;
      await writeFile(file(), bytes);
    });
    expect(r.reasons).toContainEqual({ code: 'frame-authentication-failed', frame: 2 });
    expect(codes(r.reasons)).toContain('ciphertext-hash-mismatch');
    await expectPaged(r);
  });

  it('a file cut after frame 3: truncated at frame 2 (the last one read was sealed as not final)', async () => {
    const r = await damaged(() => writeFile(file(), original.subarray(0, 3 * SEALED_FRAME)));
    expect(r.reasons).toContainEqual({
      code: 'truncated',
      frame: 2,
      expectedBytes: original.length,
      actualBytes: 3 * SEALED_FRAME,
    });
    expect(r.reasons).toContainEqual({
      code: 'ciphertext-size-mismatch',
      expected: original.length,
      actual: 3 * SEALED_FRAME,
    });
    await expectPaged(r);
  });

  it('a file cut inside a frame: truncated', async () => {
    const r = await damaged(() => writeFile(file(), original.subarray(0, 2 * SEALED_FRAME + 1000)));
    expect(codes(r.reasons)).toContain('truncated');
    expect(r.reasons.find((x) => x.code === 'truncated')).toMatchObject({ frame: 2 });
    await expectPaged(r);
  });

  it('frames 1 and 2 swapped: frame 1 was sealed as frame 2', async () => {
    const r = await damaged(async () => {
      const bytes = Buffer.from(original);
      original.copy(bytes, 1 * SEALED_FRAME, 2 * SEALED_FRAME, 3 * SEALED_FRAME);
      original.copy(bytes, 2 * SEALED_FRAME, 1 * SEALED_FRAME, 2 * SEALED_FRAME);
      await writeFile(file(), bytes);
    });
    expect(r.reasons).toContainEqual({ code: 'frame-out-of-order', frame: 1, sealedAs: 2 });
    expect(codes(r.reasons)).toContain('ciphertext-hash-mismatch');
    await expectPaged(r);
  });

  it('an edited manifest (one more row claimed): the signature fails', async () => {
    const r = await damaged(async () => {
      const signed = JSON.parse(originalManifest.toString('utf8')) as {
        manifest: { tables: { name: string; rows: number }[] };
      };
      signed.manifest.tables.find((t) => t.name === 'subjects')!.rows += 1;
      await writeFile(manifestFile(), JSON.stringify(signed));
    });
    expect(codes(r.reasons)).toEqual(['manifest-signature-invalid']);
    await expectPaged(r);
  });

  it('with an escalation policy, the failure also opens a sev2 backup incident that pages the responder', async () => {
    const db = s.database.db;
    expect(await db.select().from(incidents)).toEqual([]); // the failures above ran without a policy
    const responder = await seedStaff(db, s.keyring, 'responder');
    await seedPolicy(db, [{ targets: [user(responder.userId)], waitSeconds: 600 }]);
    const r = await damaged(async () => {
      const bytes = Buffer.from(original);
      bytes[SEALED_FRAME + 99]! ^= 0x01;
      await writeFile(file(), bytes);
    });
    await expectPaged(r);
    // The incident outlives the restore test: it records itself as its first step.
    const [incident] = await waitFor(async () => {
      const rows = await db.select().from(incidents).where(eq(incidents.openedBy, 'system:restoreTest'));
      return rows.length ? rows : undefined;
    }, 'the incident recorded');
    expect(incident).toMatchObject({ severity: 'sev2', category: 'backup', personalData: false });
    const pages = await waitFor(async () => {
      const p = await pagesOf(db, incident!.id);
      return p.length ? p : undefined;
    }, 'the responder paged');
    expect(pages[0]).toMatchObject({ userId: responder.userId, level: 1 });
    await s.temporal.workflow.getHandle(incidentWorkflowId(incident!.id)).terminate('test over');
  });

  it('the undamaged backup passes again and is verified; no temporary was left in storage', async () => {
    const r = await runRestoreTest(backupId);
    expect(r).toMatchObject({ status: 'pass', reasons: [] });
    expect((await backupRow(backupId)).status).toBe('verified');
    expect((await readdir(dir)).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});
