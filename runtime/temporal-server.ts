import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Connection } from '@temporalio/client';
import { freePort } from './ports';
import { findProcesses, isOrphaned, isRunning, processInfo, stopProcess, type ProcessInfo } from './stale-process';

export interface DevServer {
  address: string;
  uiUrl?: string;
  stop(): Promise<void>;
}

export interface DevServerOptions {
  cliPath: string;
  /** Persist the server's state here; omit for an in-memory server. */
  dbFile?: string;
  port?: number;
  ui?: boolean;
  uiPort?: number;
  /** The UI's remote codec (`<API>/codec`), so it shows encrypted payloads as JSON to admins and auditors. */
  uiCodecEndpoint?: string;
  namespace?: string;
  readyTimeoutMs?: number;
  onLog?: (line: string) => void;
  /** What start-up did about a stale server on the same database file. */
  say?: (line: string) => void;
}

/** `<db file>.pid`: the dev server's pid and the file it serves, so a later start can find a stale one. */
export const devServerPidFile = (dbFile: string) => `${dbFile}.pid`;

interface PidRecord {
  pid: number;
  ownerPid: number;
  dbFile: string;
}

const servesDbFile = (argv: string[], dbFile: string) => {
  const i = argv.indexOf('--db-filename');
  return argv.includes('start-dev') && i >= 0 && argv[i + 1] !== undefined && resolve(argv[i + 1]!) === resolve(dbFile);
};

const readPidRecord = (dbFile: string): PidRecord | undefined => {
  try {
    return JSON.parse(readFileSync(devServerPidFile(dbFile), 'utf8')) as PidRecord;
  } catch {
    return undefined;
  }
};

/**
 * A dev server left running on `dbFile` (its parent was killed with -9: it runs in its own process
 * group) would make a second one fail with SQLITE_BUSY. An orphaned one is stopped; one whose parent
 * still runs is someone's live server, so start-up refuses with one line.
 */
export const clearStaleDevServer = async (dbFile: string, say: (line: string) => void = () => {}): Promise<void> => {
  const record = readPidRecord(dbFile);
  const found = new Map<number, ProcessInfo>(
    findProcesses((argv) => servesDbFile(argv, dbFile)).map((p) => [p.pid, p]),
  );
  if (record && isRunning(record.pid) && !found.has(record.pid)) {
    const info = processInfo(record.pid);
    // Without /proc we cannot tell the pid is still ours; refusing is safer than killing a stranger.
    if (!info) {
      throw new Error(
        `${dbFile} may be held by a Temporal dev server (pid ${record.pid}, from ${devServerPidFile(dbFile)}): stop it, or remove that file if the pid is not a dev server`,
      );
    }
  }
  for (const server of found.values()) {
    if (!isOrphaned(server)) {
      throw new Error(
        `${dbFile} is in use by a running Temporal dev server (pid ${server.pid}, started by pid ${server.ppid}): stop that first`,
      );
    }
    say(`Temporal: stopping a stale dev server (pid ${server.pid}) left running on ${dbFile}`);
    await stopProcess(server.pid);
  }
  rmSync(devServerPidFile(dbFile), { force: true });
};

/** The dev server's SQLite files hold workflow history: owner-only, including existing ones. */
const restrictDbFiles = (dbFile: string) => {
  for (const file of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`, `${dbFile}-journal`]) {
    if (existsSync(file)) chmodSync(file, 0o600);
  }
};

/** Spawns with umask 077, so SQLite creates the database and its -wal/-shm files 0600. */
const spawnPrivate = (...args: Parameters<typeof spawn>): ChildProcess => {
  const previous = process.umask(0o077);
  try {
    return spawn(...args);
  } finally {
    process.umask(previous);
  }
};

const waitForFrontend = async (address: string, child: ChildProcess, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`Temporal dev server exited with code ${child.exitCode}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      await connection.workflowService.getSystemInfo({});
      await connection.close();
      return;
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`Temporal dev server at ${address} not ready after ${timeoutMs} ms: ${String(lastError)}`);
};

/** Runs `temporal server start-dev` as a child process and waits until its frontend answers. */
export const startDevServer = async (options: DevServerOptions): Promise<DevServer> => {
  const port = options.port ?? (await freePort());
  const uiPort = options.uiPort ?? (options.ui ? await freePort() : undefined);
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--namespace',
    options.namespace ?? 'default',
    '--log-level',
    'warn',
  ];
  const dbFile = options.dbFile && resolve(options.dbFile);
  if (dbFile) {
    await clearStaleDevServer(dbFile, options.say);
    restrictDbFiles(dbFile);
    args.push('--db-filename', dbFile);
  }
  if (options.ui && uiPort) {
    args.push('--ui-port', String(uiPort));
    if (options.uiCodecEndpoint) args.push('--ui-codec-endpoint', options.uiCodecEndpoint);
  } else args.push('--headless');
  // Its own process group: Ctrl-C reaches us, and we stop the server after the worker has drained.
  // Without a log reader, no pipe: a server whose reader died would be killed by SIGPIPE at its next log line.
  const output = options.onLog ? 'pipe' : 'ignore';
  const child = spawnPrivate(options.cliPath, args, { stdio: ['ignore', output, output], detached: true });
  if (dbFile && child.pid) {
    const record: PidRecord = { pid: child.pid, ownerPid: process.pid, dbFile };
    writeFileSync(devServerPidFile(dbFile), JSON.stringify(record), { mode: 0o600 });
  }
  const forgetPid = () => {
    if (dbFile && readPidRecord(dbFile)?.pid === child.pid) rmSync(devServerPidFile(dbFile), { force: true });
  };
  const killOnExit = () => {
    child.kill('SIGKILL');
    forgetPid();
  };
  process.once('exit', killOnExit);
  const relay = (chunk: Buffer) =>
    chunk
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .forEach((l) => options.onLog?.(l));
  child.stdout?.on('data', relay);
  child.stderr?.on('data', relay);
  const address = `127.0.0.1:${port}`;
  const stop = async () => {
    process.off('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return forgetPid();
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    forgetPid();
  };
  try {
    await waitForFrontend(address, child, options.readyTimeoutMs ?? 60_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { address, uiUrl: uiPort ? `http://127.0.0.1:${uiPort}` : undefined, stop };
};
