import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
