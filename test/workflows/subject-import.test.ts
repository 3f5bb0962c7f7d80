import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { activitiesFor } from '../helpers/activities';
import { stageImportFile, stagedFilePath } from '../../activities/import-staging';
import { defaultCatalog } from '../../domain/catalog';
import { importWorkflowId } from '../../domain/ids';
import type { ImportMode, SubjectImportInput } from '../../domain/subject-import';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { bundleWorkflows } from '../../runtime/worker';
import { subjectImport } from '../../workflows';
import { batchIo, importProgressQuery, io } from '../../workflows/subject-import';
import { CryptoError } from '../../activities/crypto/errors';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { badLines, writeSubjectFile } from '../helpers/subject-files';
import { connectTestTemporal, type TestTemporal } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

const keyFile = generateKeyFile();
let database: TestDatabase;
let temporal: TestTemporal;
let workflowBundle: WorkflowBundleWithSourceMap;
let dir: string;
let stagingDir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custodian-import-wf-'));
  stagingDir = join(dir, 'staging');
  [database, temporal, workflowBundle] = await Promise.all([
    createTestDatabase(),
    connectTestTemporal(parseKeyring(keyFile, 'test')),
    bundleWorkflows(),
  ]);
});
afterAll(async () => {
  await temporal?.close();
  await database?.drop();
  await rm(dir, { recursive: true, force: true });
});

const workerFor = (taskQueue: string) =>
  Worker.create({
    connection: temporal.nativeConnection,
    taskQueue,
    workflowBundle,
    activities: activitiesFor({ database, keyring: temporal.keyring, catalog: defaultCatalog, stagingDir }),
    dataConverter: temporal.dataConverter,
  });

const start = async (
  file: string,
  taskQueue: string,
  options: Partial<
    Pick<SubjectImportInput, 'batchLines' | 'batchesPerActivity' | 'batchesPerRun' | 'batchHeartbeatTimeout'>
  > & {
    mode?: ImportMode;
    importId?: string;
  } = {},
) => {
  const importId = options.importId ?? randomUUID();
  const staged = await stageImportFile(stagingDir, importId, createReadStream(file), { maxBytes: 1e9 });
  const handle = await temporal.client.workflow.start(subjectImport, {
    taskQueue,
    workflowId: importWorkflowId(importId),
    args: [
      {
        mode: options.mode ?? 'insert',
        requestedBy: 'test',
        totalLines: staged.lines,
        stagedBytes: staged.bytes,
        ...options,
        importId,
      },
    ],
  });
  return { importId, handle };
};

const count = async (query: string, ...params: unknown[]) =>
  Number((await database.sql.unsafe(query, params as never[]))[0]!.n);

describe('subject import workflow on the real worker', () => {
  it('does not retry a CryptoError, the failure type its activities document as final', () => {
    expect(new CryptoError('UNWRAP_FAILED', 'x').name).toBe('CryptoError');
    expect(io.retry.nonRetryableErrorTypes).toContain('CryptoError');
    expect(batchIo.retry.nonRetryableErrorTypes).toContain('CryptoError');
  });

  it('imports 10,000 lines with 25 bad ones exactly, continues as new, audits counts only; a re-import is all duplicates', async () => {
    const file = join(dir, 'ten-thousand.ndjson');
    const generated = await writeSubjectFile(file, 10_000, { bad: badLines((k) => `C-${String(k).padStart(6, '0')}`) });
    const taskQueue = temporal.taskQueue('import');
    const worker = await workerFor(taskQueue);
    await worker.runUntil(async () => {
      const { importId, handle } = await start(file, taskQueue, {
        batchLines: 500,
        batchesPerActivity: 3,
        batchesPerRun: 9,
      });
      const firstRunId = handle.firstExecutionRunId;
      const report = await handle.result();
      expect(report).toEqual({
        importId,
        status: 'completed',
        total: 10_000,
        imported: 9_975,
        updated: 0,
        duplicates: 0,
        rejected: 25,
        unclassifiedFields: [],
      });
      expect((await handle.describe()).runId).not.toBe(firstRunId);
      expect(await handle.query(importProgressQuery)).toMatchObject({ status: 'completed' });

      const rejects =
        await database.sql`select line, reason from import_rejects where import_id = ${importId} order by line`;
      expect(rejects.map((r) => [r.line, r.reason])).toEqual([...generated.rejects]);
      expect(await count(`select count(*) n from subjects where import_id = $1`, importId)).toBe(9_975);
      expect(existsSync(stagedFilePath(stagingDir, importId))).toBe(false);

      const audit = await database.sql`select actor, details from audit_log where target_id = ${importId} order by seq`;
      expect(audit.map((a) => a.actor)).toEqual(['test', 'system']);
      expect(audit[1]!.details).toMatchObject({ imported: 9_975, rejected: 25, status: 'completed' });
      expect(JSON.stringify(audit)).not.toMatch(/example\.com|测试用户|13800/);

      const again = await start(file, taskQueue);
      expect(await again.handle.result()).toMatchObject({ imported: 0, duplicates: 9_980, rejected: 20 });
      expect(await count(`select count(*) n from subjects`)).toBe(9_975);
    });
  });

  it('is cancelled at a batch boundary with the committed counts recorded', async () => {
    const file = join(dir, 'cancel.ndjson');
    await writeSubjectFile(file, 20_000, { prefix: 'X' });
    const taskQueue = temporal.taskQueue('import-cancel');
    const worker = await workerFor(taskQueue);
    await worker.runUntil(async () => {
      const { importId, handle } = await start(file, taskQueue, { batchLines: 200, batchesPerActivity: 2 });
      await waitFor(
        async () => ((await handle.query(importProgressQuery)).counts.imported > 0 ? true : undefined),
        'progress',
      );
      await handle.cancel();
      const failure = await handle.result().catch((err: unknown) => err);
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      expect((failure as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      const [row] = await database.sql`select status, imported from subject_imports where id = ${importId}`;
      expect(row!.status).toBe('cancelled');
      expect(row!.imported).toBeLessThan(20_000);
      expect(await count(`select count(*) n from subjects where import_id = $1`, importId)).toBe(row!.imported);
      expect(existsSync(stagedFilePath(stagingDir, importId))).toBe(false);
    });
  });

  it('runs a batch slower than the heartbeat timeout to the end in its first attempt', async () => {
    const file = join(dir, 'slow.ndjson');
    await writeSubjectFile(file, 30, { prefix: 'SLOW' });
    const taskQueue = temporal.taskQueue('import-slow');
    const worker = await workerFor(taskQueue);
    const importId = randomUUID();
    // The batch's claim checks its foreign key to the import row: holding that row makes the batch wait.
    await database.sql`insert into subject_imports (id, mode, requested_by, total_lines, staged_bytes)
      values (${importId}, 'insert', 'test', 30, 1)`;
    const holder = await database.sql.reserve();
    await holder`begin`;
    await holder`select 1 from subject_imports where id = ${importId} for update`;
    const heartbeatTimeoutMs = 1_000;
    await worker.runUntil(async () => {
      const { handle } = await start(file, taskQueue, { importId, batchHeartbeatTimeout: `${heartbeatTimeoutMs} ms` });
      try {
        await waitFor(async () => {
          const [waiting] = await database.sql`select count(*) n from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock'`;
          return Number(waiting!.n) > 0 ? true : undefined;
        }, 'the batch to wait at its claim');
        // Alive well past the heartbeat timeout, still in its first attempt.
        const pending = await waitFor(async () => {
          const [activity] = (await handle.describe()).raw.pendingActivities ?? [];
          if (!activity?.lastHeartbeatTime || !activity.lastStartedTime) return undefined;
          const alive = tsToMs(activity.lastHeartbeatTime) - tsToMs(activity.lastStartedTime);
          return alive > 3 * heartbeatTimeoutMs ? activity : undefined;
        }, 'heartbeats past the timeout');
        expect(pending.attempt).toBe(1);
      } finally {
        await holder`rollback`;
        holder.release();
      }
      expect(await handle.result()).toMatchObject({ status: 'completed', imported: 30 });
      const events = (await handle.fetchHistory()).events ?? [];
      expect(events.filter((e) => e.activityTaskTimedOutEventAttributes)).toEqual([]);
      expect(
        events.flatMap((e) =>
          e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt] : [],
        ),
      ).toEqual([1, 1, 1]);
    });
  });

  it('fails with the real cause when the staged file is missing, and closes the import', async () => {
    const taskQueue = temporal.taskQueue('import-missing');
    const worker = await workerFor(taskQueue);
    await worker.runUntil(async () => {
      const importId = randomUUID();
      const handle = await temporal.client.workflow.start(subjectImport, {
        taskQueue,
        workflowId: importWorkflowId(importId),
        args: [{ importId, mode: 'insert', requestedBy: 'test', totalLines: 1, stagedBytes: 1 }],
      });
      const failure = await handle.result().catch((err: unknown) => err);
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      const cause = (failure as WorkflowFailedError).cause?.cause;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      expect((cause as ApplicationFailure).type).toBe('StagedFileMissing');
      const [entry] = await database.sql`select action, details from audit_log where target_id = ${importId}`;
      expect(entry).toMatchObject({ action: 'subject-import.failed', details: { error: 'StagedFileMissing' } });
    });
  });

  it(
    'survives a SIGKILLed worker mid-import: exactly 50,000 subjects, no duplicates',
    { timeout: 240_000 },
    async () => {
      const file = join(dir, 'fifty-thousand.ndjson');
      await writeSubjectFile(file, 50_000, { prefix: 'K' });
      const bundlePath = join(dir, 'workflow-bundle.js');
      await writeFile(bundlePath, workflowBundle.code);
      const taskQueue = temporal.taskQueue('import-kill');
      const children: ChildProcess[] = [];
      const spawnWorker = async () => {
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', fileURLToPath(new URL('../helpers/import-worker.ts', import.meta.url))],
          {
            env: {
              ...process.env,
              TEMPORAL_ADDRESS: inject('temporalAddress'),
              TASK_QUEUE: taskQueue,
              DATABASE_URL: database.url,
              STAGING_DIR: stagingDir,
              KEY_FILE_JSON: JSON.stringify(keyFile),
              WORKFLOW_BUNDLE: bundlePath,
            },
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
        children.push(child);
        let output = '';
        child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
        await waitFor(async () => (output.includes('ready') ? true : undefined), 'the worker to start');
        return child;
      };
      try {
        const first = await spawnWorker();
        const { importId, handle } = await start(file, taskQueue, { batchLines: 500, batchesPerActivity: 4 });
        const progress = await waitFor(async () => {
          const p = await handle.query(importProgressQuery);
          return p.counts.imported > 0 ? p : undefined;
        }, 'the first batches');
        expect(progress.counts.imported).toBeLessThan(50_000);
        first.kill('SIGKILL');
        await once(first, 'exit');
        expect(await count(`select count(*) n from subjects where import_id = $1`, importId)).toBeLessThan(50_000);

        await spawnWorker();
        const report = await handle.result();
        expect(report).toMatchObject({
          status: 'completed',
          total: 50_000,
          imported: 50_000,
          duplicates: 0,
          rejected: 0,
        });
        expect(await count(`select count(*) n from subjects where import_id = $1`, importId)).toBe(50_000);
        expect(await count(`select count(distinct external_ref) n from subjects where import_id = $1`, importId)).toBe(
          50_000,
        );
        expect(
          await count(
            `select count(*) n from subject_keys k join subjects s on s.id = k.subject_id where s.import_id = $1`,
            importId,
          ),
        ).toBe(50_000);
        expect(
          await count(
            `select count(*) n from subject_fields f join subjects s on s.id = f.subject_id where s.import_id = $1`,
            importId,
          ),
        ).toBe(50_000 * 8);
        expect(await count(`select coalesce(sum(lines), 0) n from import_batches where import_id = $1`, importId)).toBe(
          50_000,
        );
      } finally {
        for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await Promise.all(
          children.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)),
        );
      }
    },
  );
});
