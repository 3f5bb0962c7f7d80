import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { stageImportFile } from '../../activities/import-staging';
import type { importActivities } from '../../activities/subject-import';
import type { ImportMode } from '../../domain/subject-import';
import { createTestDatabase, type TestDatabase } from './db';

export interface Scratch {
  database: TestDatabase;
  /** A private temporary directory (staging, files to import). */
  dir: string;
}

/** A fresh database copy and a private directory, for activity tests that need no Temporal. */
export const openScratch = async (prefix: string): Promise<Scratch> => ({
  database: await createTestDatabase(),
  dir: await mkdtemp(join(tmpdir(), prefix)),
});

export const closeScratch = async (scratch: Partial<Scratch>): Promise<void> => {
  await scratch.database?.drop();
  if (scratch.dir) await rm(scratch.dir, { recursive: true, force: true });
};

/** Stages `file` under a new import ID and runs the import's begin activity, as the workflow's first step does. */
export const stageAndBegin = async (
  activities: ReturnType<typeof importActivities>,
  stagingDir: string,
  file: string,
  mode: ImportMode = 'insert',
): Promise<string> => {
  const importId = randomUUID();
  const staged = await stageImportFile(stagingDir, importId, createReadStream(file), { maxBytes: 1e9 });
  await new MockActivityEnvironment().run(activities.beginSubjectImport, {
    importId,
    mode,
    requestedBy: 'test',
    totalLines: staged.lines,
    stagedBytes: staged.bytes,
  });
  return importId;
};
