import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from '@temporalio/worker';
import { and, eq } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { applyCopySettings, digestTable } from '../../activities/backup-copy';
import { decryptField } from '../../activities/crypto/field-cipher';
import { dataKeys } from '../../activities/keys';
import { connect } from '../../db/client';
import { backups, subjectFields } from '../../db/schema';
import type { SignedManifest } from '../../domain/backup';
import { withDatabase } from '../../runtime/database-url';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { seedSubjects, type SeededSubjects } from '../helpers/backups';
import { runCustodian } from '../helpers/cli';
import { createTestServices, createTestWorker, type TestServices } from '../helpers/services';

const keyFile = generateKeyFile();
const keyring = parseKeyring(keyFile, 'test');
const dir = mkdtempSync(join(tmpdir(), 'custodian-cli-backup-'));
const admin = postgres(withDatabase(inject('templateDatabaseUrl'), 'postgres'), { max: 1, onnotice: () => {} });
const emptyDatabases: string[] = [];

let s: TestServices;
let worker: Worker;
let running: Promise<void>;
let seeded: SeededSubjects;

beforeAll(async () => {
  s = await createTestServices({ keyring, config: { BACKUP_DIR: join(dir, 'backups') } });
  worker = await createTestWorker(s);
  running = worker.run();
  seeded = await seedSubjects(s.testDatabase, keyring, 2_000);
}, 180_000);

afterAll(async () => {
  worker?.shutdown();
  await running;
  await s?.close();
  for (const name of emptyDatabases) await admin.unsafe(`drop database if exists "${name}" with (force)`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
});

const env = () => ({
  CUSTODIAN_DATA_DIR: join(dir, 'data'),
  CUSTODIAN_KEYRING: JSON.stringify(keyFile),
  BACKUP_DIR: join(dir, 'backups'),
  DATABASE_URL: s.testDatabase.url,
  TEMPORAL_ADDRESS: inject('temporalAddress'),
  TEMPORAL_TASK_QUEUE: s.config.TEMPORAL_TASK_QUEUE,
});

const emptyDatabase = async () => {
  const name = `custodian_restore_${Math.random().toString(16).slice(2, 10)}`;
  await admin.unsafe(`create database "${name}"`);
  emptyDatabases.push(name);
  return withDatabase(inject('templateDatabaseUrl'), name);
};

describe('custodian backup and custodian restore', () => {
  let backupId: string;

  it('backup: runs one through the workflow, progress on stderr, a summary on stdout', async () => {
    const { code, stdout, stderr } = await runCustodian(['backup'], env());
    expect(stderr).toMatch(/^backup [0-9a-f-]{36} \(workflow backup-[0-9a-f-]{36}\)$/m);
    expect(stderr).toMatch(/test:done/);
    expect(stdout).toMatch(/^backup [0-9a-f-]{36} verified in /m);
    expect(stdout).toMatch(/restore test +[0-9a-f-]{36} pass, RTO \d+ ms, RPO \d+ ms/);
    expect(code).toBe(0);
    backupId = /^backup ([0-9a-f-]{36}) verified/m.exec(stdout)![1]!;
    const [row] = await s.database.db.select().from(backups).where(eq(backups.id, backupId));
    expect(row).toMatchObject({ status: 'verified', requestedBy: expect.stringMatching(/^cli:/) });
  }, 120_000);

  it('restore: into an empty database, every table reproduces its manifest hash, the keys come back', async () => {
    const targetUrl = await emptyDatabase();
    const { code, stdout, stderr } = await runCustodian(
      ['restore', '--backup', backupId, '--target-url', targetUrl],
      env(),
    );
    expect(stderr).not.toMatch(/custodian restore:/);
    expect(code).toBe(0);
    expect(stdout).toMatch(/every hash matches the manifest/);
    expect(stdout).toMatch(/wrapped data keys restored/);

    const [row] = await s.database.db.select().from(backups).where(eq(backups.id, backupId));
    const { manifest } = row!.manifest as SignedManifest;
    const target = connect(targetUrl, { max: 1 });
    try {
      const digests = await target.sql.begin(async (tx) => {
        await applyCopySettings(tx);
        const out: Record<string, { rows: number; sha256: string }> = {};
        for (const table of manifest.tables) out[table.name] = await digestTable(tx, table);
        return out;
      });
      for (const table of manifest.tables)
        expect(digests[table.name], table.name).toMatchObject({ rows: table.rows, sha256: table.sha256 });

      // The personal values decrypt again with the restored wrapped keys.
      const subjectId = seeded.ids[97]!;
      const key = await dataKeys({ db: target.db, keyring }).loadDataKey(subjectId);
      const [email] = await target.db
        .select()
        .from(subjectFields)
        .where(and(eq(subjectFields.subjectId, subjectId), eq(subjectFields.field, 'email')));
      const value = decryptField(
        key!.dek,
        { subjectId, field: 'email', keyVersion: email!.keyVersion! },
        email!.ciphertext!,
      );
      expect(seeded.personalValues).toContain(value);
    } finally {
      await target.close();
    }
  }, 120_000);

  it('restore: refuses a database that is not empty, and an unknown backup', async () => {
    const notEmpty = await runCustodian(['restore', '--backup', backupId, '--target-url', s.testDatabase.url], env());
    expect(notEmpty.code).toBe(1);
    expect(notEmpty.stderr).toMatch(/the target database is not empty \(\d+ relations\)/);

    const unknown = await runCustodian(
      ['restore', '--backup', '00000000-0000-4000-8000-000000000000', '--target-url', await emptyDatabase()],
      env(),
    );
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/manifest-missing/);
  }, 120_000);
});
