import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const holder = fileURLToPath(new URL('./hold-server.ts', import.meta.url));

/**
 * Starts a server in a child `node` process and kills that process with SIGKILL once the server is up,
 * leaving the server orphaned. Returns what the child printed.
 */
export const startAndAbandon = async (args: string[]): Promise<Record<string, string>> => {
  const child = spawn(process.execPath, ['--import', 'tsx', holder, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the holder exited with code ${code} before the server was up`)));
  });
  child.kill('SIGKILL');
  await exited;
  return JSON.parse(line) as Record<string, string>;
};
