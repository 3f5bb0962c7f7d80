import { mkdtemp, rm, stat } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { isRunning } from '../../runtime/stale-process';
import { devServerPidFile, startDevServer, type DevServer } from '../../runtime/temporal-server';
import { waitFor } from '../helpers/wait';
import { startAndAbandon } from './stale-helpers';

let dir: string;
let dbFile: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custodian-temporal-'));
  dbFile = join(dir, 'temporal.db');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const answersOnce = async (address: string) => {
  const connection = await Connection.connect({ address, connectTimeout: 5000 });
  try {
    await connection.workflowService.getSystemInfo({});
    return true;
  } finally {
    await connection.close();
  }
};
/** Whether the server answers within 30 s: on a loaded machine one connect attempt can miss its deadline. */
const answers = (address: string) => waitFor(() => answersOnce(address), `a Temporal server at ${address}`, 30_000);

describe('Temporal dev server on a database file', { timeout: 180_000 }, () => {
  it('stops a dev server a killed start left running on the same file, then serves; the files are 0600', async () => {
    const cliPath = inject('temporalCliPath');
    const { address: staleAddress } = await startAndAbandon(['temporal', dbFile, cliPath]);
    const stalePid = (JSON.parse(readFileSync(devServerPidFile(dbFile), 'utf8')) as { pid: number }).pid;
    expect(isRunning(stalePid)).toBe(true);
    expect(await answers(staleAddress!)).toBe(true);

    const lines: string[] = [];
    let server: DevServer | undefined;
    try {
      server = await startDevServer({ cliPath, dbFile, say: (l) => lines.push(l) });
      expect(lines).toContainEqual(expect.stringContaining(`stopping a stale dev server (pid ${stalePid})`));
      expect(isRunning(stalePid)).toBe(false);
      expect(await answers(server.address)).toBe(true);
      for (const file of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`, devServerPidFile(dbFile)]) {
        if (existsSync(file)) expect((await stat(file)).mode & 0o777, file).toBe(0o600);
      }
      expect(existsSync(dbFile)).toBe(true);

      // A server whose parent still runs is live, not stale: a second start on the file refuses.
      await expect(startDevServer({ cliPath, dbFile })).rejects.toThrow(/is in use by a running Temporal dev server/);
      expect(await answers(server.address)).toBe(true);
    } finally {
      await server?.stop();
      if (isRunning(stalePid)) process.kill(stalePid, 'SIGKILL');
    }
    expect(existsSync(devServerPidFile(dbFile))).toBe(false);
  });
});
