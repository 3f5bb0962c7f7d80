import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import type { Client } from '@temporalio/client';
import { eq, inArray } from 'drizzle-orm';
import { connect, type Database } from '../db/client';
import { backups, restoreTests } from '../db/schema';
import { summarizeReasons, type BackupInput, type BackupResult } from '../domain/backup';
import { backupWorkflowId } from '../domain/ids';
import { connectClient } from '../runtime/app-server';
import { ConfigError, loadConfig } from '../runtime/config';
import { loadKeyring } from '../runtime/keyring';
import { readRuntimeFile } from '../runtime/runtime-file';
import type { backup } from '../workflows/backup';

const USAGE = 'usage: custodian backup [--no-restore-test]';
const BAR_WIDTH = 30;

export interface BackupCommandDeps {
  client: Client;
  taskQueue: string;
  /** Where progress is read from (the backup's and its restore test's rows). */
  database: Database;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
  pollMs?: number;
}

export const megabytes = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** `[####------]  42.0%  restore  12.3 MB / 29.3 MB`, or without a total, the bytes alone. */
export const progressBar = (phase: string, done: number, total?: number): string => {
  if (!total) return `${phase.padEnd(8)} ${megabytes(done)}`;
  const share = Math.min(done / total, 1);
  const filled = Math.round(share * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${(share * 100).toFixed(1).padStart(5)}%  ${phase.padEnd(8)} ${megabytes(done)} / ${megabytes(total)}`;
};

/** `custodian backup`: runs a backup through its workflow now, with progress on stderr and a summary on stdout. */
export const runBackupCommand = async (args: string[], deps: BackupCommandDeps): Promise<number> => {
  const unknown = args.find((a) => a !== '--no-restore-test');
  if (unknown) throw new ConfigError(`unknown option ${unknown}\n${USAGE}`);
  const stdout = deps.stdout ?? process.stdout;
  const stderr = deps.stderr ?? process.stderr;
  const input: BackupInput = {
    backupId: randomUUID(),
    keyringBackupId: randomUUID(),
    requestedBy: `cli:${userInfo().username}`,
    ...(args.includes('--no-restore-test') ? { restoreTest: false } : {}),
  };
  const handle = await deps.client.workflow.start<typeof backup>('backup', {
    taskQueue: deps.taskQueue,
    workflowId: backupWorkflowId(input.backupId),
    args: [input],
  });
  stderr.write(`backup ${input.backupId} (workflow ${handle.workflowId})\n`);

  const { db } = deps.database;
  let lastLine = '';
  const draw = async () => {
    const rows = await db
      .select()
      .from(backups)
      .where(inArray(backups.id, [input.backupId, input.keyringBackupId]));
    const data = rows.find((r) => r.id === input.backupId);
    if (!data) return;
    let line = progressBar(
      data.phase ?? 'starting',
      rows.reduce((sum, r) => sum + r.bytesDone, 0),
    );
    if (data.status !== 'running') {
      const [test] = await db.select().from(restoreTests).where(eq(restoreTests.backupId, input.backupId));
      if (test) line = progressBar(`test:${test.phase ?? 'starting'}`, test.bytesDone, data.sizeBytes ?? undefined);
    }
    if (stderr.isTTY) stderr.write(`\r${line}`);
    else if (line !== lastLine) stderr.write(`${line}\n`);
    lastLine = line;
  };
  let drawing: Promise<void> = Promise.resolve();
  const timer = setInterval(
    () => {
      drawing = drawing.then(draw).catch(() => {});
    },
    deps.pollMs ?? (stderr.isTTY ? 250 : 5000),
  );
  let result: BackupResult | undefined;
  let failure: unknown;
  const started = Date.now();
  try {
    result = await handle.result();
  } catch (err) {
    failure = err;
  } finally {
    clearInterval(timer);
    // The last state, however fast the run was.
    await drawing.then(draw).catch(() => {});
    if (stderr.isTTY && lastLine) stderr.write('\n');
  }
  if (!result) {
    stderr.write(`backup ${input.backupId} failed: ${(failure as Error)?.message ?? String(failure)}\n`);
    return 1;
  }
  const [data] = await db.select().from(backups).where(eq(backups.id, input.backupId));
  const test = result.restoreTest;
  stdout.write(
    [
      `backup ${result.backupId} ${result.status} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
      `  size            ${megabytes(result.sizeBytes)} encrypted (${megabytes(data?.bytesDone ?? 0)} of table data)`,
      `  keyring backup  ${result.keyringBackupId}${data?.snapshotAt ? ` (snapshot ${data.snapshotAt.toISOString()})` : ''}`,
      ...(test
        ? [
            `  restore test    ${test.restoreTestId} ${test.status}, RTO ${test.rtoMs} ms, RPO ${test.rpoMs} ms`,
            ...(test.reasons.length ? [`  reasons         ${summarizeReasons(test.reasons)}`] : []),
          ]
        : ['  restore test    not run']),
      '',
    ].join('\n'),
  );
  return result.status === 'restore-test-failed' ? 1 : 0;
};

/** `custodian backup`: against TEMPORAL_ADDRESS/DATABASE_URL, or those of a running `custodian start`. */
export const backupCommand = async (args: string[]): Promise<number> => {
  const config = loadConfig();
  const running = readRuntimeFile(config.dataDir);
  const address = config.TEMPORAL_ADDRESS ?? running?.temporalAddress;
  const databaseUrl = config.DATABASE_URL ?? running?.databaseUrl;
  if (!address) throw new ConfigError('TEMPORAL_ADDRESS: required, or run `custodian start` first');
  if (!databaseUrl) throw new ConfigError('DATABASE_URL: required, or run `custodian start` first');
  const { keyring } = await loadKeyring({ env: config, dataDir: config.dataDir, allowGenerate: false });
  const clients = await connectClient(address, config, keyring);
  const database = connect(databaseUrl, { max: 1 });
  try {
    return await runBackupCommand(args, { client: clients.client, taskQueue: config.TEMPORAL_TASK_QUEUE, database });
  } finally {
    await clients.close();
    await database.close();
  }
};
