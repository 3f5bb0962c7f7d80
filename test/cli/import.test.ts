import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activitiesFor } from '../helpers/activities';
import { runImportCommand } from '../../cli/import';
import { defaultCatalog } from '../../domain/catalog';
import { bundleWorkflows } from '../../runtime/worker';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { badLines, fakeSubject } from '../helpers/subject-files';
import { connectTestTemporal, type TestTemporal } from '../helpers/temporal';

let database: TestDatabase;
let temporal: TestTemporal;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custodian-cli-import-'));
  [database, temporal] = await Promise.all([createTestDatabase(), connectTestTemporal()]);
});
afterAll(async () => {
  await temporal?.close();
  await database?.drop();
  await rm(dir, { recursive: true, force: true });
});

const capture = () => {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, text: () => text };
};

describe('custodian import <file>', () => {
  it('runs the import with progress and prints a summary with the first rejected lines', async () => {
    const file = join(dir, 'subjects.ndjson');
    const lines = Array.from({ length: 300 }, (_, i) => JSON.stringify(fakeSubject(i, 'CLI')));
    lines.splice(100, 0, badLines(() => 'CLI-000001')[5]!.text);
    await writeFile(file, `${lines.join('\n')}\n`);
    const stagingDir = join(dir, 'staging');
    const taskQueue = temporal.taskQueue('cli-import');
    const worker = await Worker.create({
      connection: temporal.nativeConnection,
      taskQueue,
      workflowBundle: await bundleWorkflows(),
      activities: activitiesFor({ database, keyring: temporal.keyring, catalog: defaultCatalog, stagingDir }),
      dataConverter: temporal.dataConverter,
    });
    const stdout = capture();
    const stderr = capture();
    const code = await worker.runUntil(
      runImportCommand([file], {
        client: temporal.client,
        taskQueue,
        stagingDir,
        database,
        stdout: stdout.stream,
        stderr: stderr.stream,
        pollMs: 50,
      }),
    );
    expect(code).toBe(0);
    expect(stdout.text()).toMatch(/completed in .* s\n\s+total\s+301\n\s+imported\s+300\n/);
    expect(stdout.text()).toContain('line 101: missing_external_ref (externalRef is missing)');
    expect(stderr.text()).toMatch(/import [0-9a-f-]{36}: 301 lines/);
    expect(stdout.text() + stderr.text()).not.toMatch(/测试用户|example\.com/);
  });

  it('explains its usage', async () => {
    const deps = { client: temporal.client, taskQueue: 'unused', stagingDir: dir };
    await expect(runImportCommand([], deps)).rejects.toThrow(/usage: custodian import/);
    await expect(runImportCommand(['a.ndjson', '--mode', 'merge'], deps)).rejects.toThrow(/--mode must be/);
  });
});
