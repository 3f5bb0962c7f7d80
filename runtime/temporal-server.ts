import { spawn, type ChildProcess } from 'node:child_process';
import { Connection } from '@temporalio/client';
import { freePort } from './ports';

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
  namespace?: string;
  readyTimeoutMs?: number;
  onLog?: (line: string) => void;
}

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
  if (options.dbFile) args.push('--db-filename', options.dbFile);
  if (options.ui && uiPort) args.push('--ui-port', String(uiPort));
  else args.push('--headless');
  // Its own process group: Ctrl-C reaches us, and we stop the server after the worker has drained.
  const child = spawn(options.cliPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const killOnExit = () => child.kill('SIGKILL');
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
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitForFrontend(address, child, options.readyTimeoutMs ?? 60_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { address, uiUrl: uiPort ? `http://127.0.0.1:${uiPort}` : undefined, stop };
};
