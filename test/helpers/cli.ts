import { spawn } from 'node:child_process';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `custodian <args>` through the package's bin, as an operator would with npx. The environment is the
 * test's minus any CUSTODIAN_* and DATABASE_URL of the machine, plus `env`.
 */
export const runCustodian = (args: string[], env: Record<string, string> = {}) =>
  new Promise<CliResult>((resolve) => {
    const inherited = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('CUSTODIAN_') && k !== 'DATABASE_URL'),
    );
    const child = spawn(process.execPath, ['bin/custodian.js', ...args], {
      env: { ...inherited, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
