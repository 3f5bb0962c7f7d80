import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where a running `custodian start` tells other commands (create-api-key, verify-audit) how to reach it. */
export interface RuntimeFile {
  pid: number;
  databaseUrl: string;
  temporalAddress: string;
  apiUrl: string;
}

const path = (dataDir: string) => join(dataDir, 'runtime.json');

export const writeRuntimeFile = (dataDir: string, value: RuntimeFile) =>
  writeFileSync(path(dataDir), JSON.stringify(value, null, 2), { mode: 0o600 });

export const removeRuntimeFile = (dataDir: string) => rmSync(path(dataDir), { force: true });

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

export const readRuntimeFile = (dataDir: string): RuntimeFile | undefined => {
  try {
    const value = JSON.parse(readFileSync(path(dataDir), 'utf8')) as RuntimeFile;
    return alive(value.pid) ? value : undefined;
  } catch {
    return undefined;
  }
};
