import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, inject } from 'vitest';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { bundleWorkflows } from '../../runtime/worker';
import { createTestDatabase, type TestDatabase } from './db';
import { connectTestTemporal, type TestTemporal } from './temporal';
import { waitFor } from './wait';

export interface SpawnedWorker {
  child: ChildProcess;
  /** Starts polling a standby worker and waits until it is ready. */
  go(): Promise<void>;
}

export interface ProductionWorkers {
  /** The key file every spawned worker and `temporal` share (a keyring built from it alone reads what they wrote). */
  readonly keyFile: ReturnType<typeof generateKeyFile>;
  /** Set once the file's `beforeAll` has run: read them inside tests. */
  database: TestDatabase;
  temporal: TestTemporal;
  /** The workers' staging directory. */
  dir: string;
  /**
   * A worker built as production builds it, in a child process (test/helpers/production-worker.ts), to SIGKILL.
   * `standby`: started and connected but not polling until `go()`, so a restart takes a moment, not a process start.
   */
  spawnWorker(taskQueue: string, o?: { standby?: boolean }): Promise<SpawnedWorker>;
}

/**
 * For the tests that kill a worker mid-process: registers the file's `beforeAll` (a database of its own, a Temporal
 * client with the shared key file, one workflow bundle written to disk for the children) and `afterAll` (every child
 * still running drained with SIGTERM — killed after 20 s — then the client, database and directory).
 */
export const useProductionWorkers = (name: string): ProductionWorkers => {
  const children: ChildProcess[] = [];
  let bundlePath = '';
  const workers = { keyFile: generateKeyFile() } as ProductionWorkers;

  beforeAll(async () => {
    workers.dir = await mkdtemp(join(tmpdir(), `custodian-${name}-`));
    const [database, temporal, bundle] = await Promise.all([
      createTestDatabase(),
      connectTestTemporal(parseKeyring(workers.keyFile, 'test')),
      bundleWorkflows(),
    ]);
    Object.assign(workers, { database, temporal });
    bundlePath = join(workers.dir, 'workflow-bundle.js');
    await writeFile(bundlePath, bundle.code);
    await writeFile(`${bundlePath}.map`, bundle.sourceMap);
  }, 180_000);

  afterAll(async () => {
    const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
    for (const child of running) {
      child.stdin?.end();
      child.kill('SIGTERM');
    }
    await Promise.all(
      running.map((c) =>
        Promise.race([once(c, 'exit'), new Promise((r) => setTimeout(r, 20_000)).then(() => c.kill('SIGKILL'))]),
      ),
    );
    await workers.temporal?.close();
    await workers.database?.drop();
    if (workers.dir) await rm(workers.dir, { recursive: true, force: true });
  });

  workers.spawnWorker = async (taskQueue, o = {}) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('./production-worker.ts', import.meta.url))],
      {
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: inject('temporalAddress'),
          TASK_QUEUE: taskQueue,
          DATABASE_URL: workers.database.url,
          STAGING_DIR: workers.dir,
          KEY_FILE_JSON: JSON.stringify(workers.keyFile),
          WORKFLOW_BUNDLE: bundlePath,
          STANDBY: o.standby ? '1' : '0',
        },
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    children.push(child);
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const until = (line: string) => waitFor(async () => (output.includes(line) ? true : undefined), `worker ${line}`);
    await until(o.standby ? 'standby' : 'ready');
    return {
      child,
      go: async () => {
        child.stdin!.write('go\n');
        await until('ready');
      },
    };
  };
  return workers;
};
