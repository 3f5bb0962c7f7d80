import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import {
  backupObjectKey,
  backupStorageFor,
  manifestObjectKey,
  type BackupStorage,
} from '../../activities/backup-storage';
import { backupWorkflowId } from '../../domain/ids';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { backup } from '../../workflows';
import { seedSubjects } from '../helpers/backups';
import { createTestServices, createTestWorker, testWorkflowBundle, type TestServices } from '../helpers/services';
import { waitFor } from '../helpers/wait';

const keyFile = generateKeyFile();
const dir = mkdtempSync(join(tmpdir(), 'custodian-backup-kill-'));
const backupDir = join(dir, 'backups');
let s: TestServices;
let storage: BackupStorage;

beforeAll(async () => {
  s = await createTestServices({ keyring: parseKeyring(keyFile, 'test'), config: { BACKUP_DIR: backupDir } });
  storage = backupStorageFor(s.config);
  await seedSubjects(s.testDatabase, s.keyring, 20_000);
}, 180_000);

afterAll(async () => {
  await s?.close();
  rmSync(dir, { recursive: true, force: true });
});

it('a worker SIGKILLed while writing the backup: the export restarts, the workflow completes, no partial file is listed', async () => {
  const bundlePath = join(dir, 'workflow-bundle.js');
  await writeFile(bundlePath, (await testWorkflowBundle()).code);
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('../helpers/import-worker.ts', import.meta.url))],
    {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        TASK_QUEUE: s.config.TEMPORAL_TASK_QUEUE,
        DATABASE_URL: s.testDatabase.url,
        STAGING_DIR: s.stagingDir,
        KEY_FILE_JSON: JSON.stringify(keyFile),
        WORKFLOW_BUNDLE: bundlePath,
        BACKUP_DIR: backupDir,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  try {
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitFor(async () => (output.includes('ready') ? true : undefined), 'the worker to start');

    const backupId = crypto.randomUUID();
    const keyringBackupId = crypto.randomUUID();
    const handle = await s.temporal.workflow.start(backup, {
      taskQueue: s.config.TEMPORAL_TASK_QUEUE,
      workflowId: backupWorkflowId(backupId),
      args: [{ backupId, keyringBackupId, requestedBy: 'test', heartbeatTimeout: '3 seconds' }],
    });
    // The data backup is being written: its temporary exists, nothing of it is visible yet.
    const temporary = await waitFor(
      async () => {
        const names = await readdir(backupDir).catch(() => []);
        return names.find((n) => n.startsWith(`.tmp-${backupObjectKey(backupId)}`));
      },
      'the data backup being written',
      120_000,
    );
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(await readdir(backupDir)).toContain(temporary);
    const visible = (await storage.list()).map((o) => o.key);
    expect(visible).not.toContain(backupObjectKey(backupId));
    expect(visible).not.toContain(manifestObjectKey(backupId));
    expect(visible).not.toContain(manifestObjectKey(keyringBackupId));

    const worker = await createTestWorker(s);
    const result = await worker.runUntil(handle.result());
    expect(result).toMatchObject({ status: 'verified', restoreTest: { status: 'pass' } });

    const history = await handle.fetchHistory();
    const exportScheduled = history.events!.find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'exportBackup',
    )!.eventId;
    const exportStarted = history.events!.find(
      (e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(exportScheduled),
    );
    expect(exportStarted?.activityTaskStartedEventAttributes?.attempt).toBeGreaterThanOrEqual(2);

    // Exactly the two backups and their manifests; the killed attempt's temporary was swept.
    expect((await storage.list()).map((o) => o.key).sort()).toEqual(
      [backupId, keyringBackupId].flatMap((id) => [backupObjectKey(id), manifestObjectKey(id)]).sort(),
    );
    expect((await readdir(backupDir)).filter((n) => n.startsWith('.'))).toEqual([]);
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  }
}, 240_000);
