import { createReadStream } from 'node:fs';
import { userInfo } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { asc, eq } from 'drizzle-orm';
import { removeStagedFile, stageImportFile } from '../activities/import-staging';
import { connect, type Database } from '../db/client';
import { connectClient } from '../runtime/app-server';
import { ConfigError, importStagingDir, loadConfig } from '../runtime/config';
import { loadKeyring } from '../runtime/keyring';
import { readRuntimeFile } from '../runtime/runtime-file';
import { importRejects } from '../db/schema';
import { importWorkflowId } from '../domain/ids';
import {
  IMPORT_PROGRESS_QUERY,
  ImportMode,
  type ImportProgress,
  type ImportReport,
  type SubjectImportInput,
} from '../domain/subject-import';
import type { subjectImport } from '../workflows/subject-import';

export interface ImportCommandDeps {
  client: Client;
  taskQueue: string;
  /** The workers' staging directory (`<CUSTODIAN_DATA_DIR>/imports`): the file is copied there. */
  stagingDir: string;
  /** When given, the summary lists the first rejected lines. */
  database?: Database;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Progress refresh; seconds-scale in tests. */
  pollMs?: number;
}

const usage = 'usage: custodian import <file.ndjson> [--mode insert|upsert]';
const SHOWN_REJECTS = 20;
const BAR_WIDTH = 30;

const parseArgs = (args: string[]) => {
  let file: string | undefined;
  let mode: ImportMode = 'insert';
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--mode') {
      const parsed = ImportMode.safeParse(args[++i]);
      if (!parsed.success) throw new Error(`--mode must be insert or upsert\n${usage}`);
      mode = parsed.data;
    } else if (arg.startsWith('-')) throw new Error(`unknown option ${arg}\n${usage}`);
    else if (file) throw new Error(`one file at a time\n${usage}`);
    else file = arg;
  }
  if (!file) throw new Error(usage);
  return { file, mode };
};

const bar = (p: ImportProgress, started: number): string => {
  const done = p.counts.imported + p.counts.updated + p.counts.duplicates + p.counts.rejected;
  const share = p.total > 0 ? Math.min(done / p.total, 1) : 0;
  const filled = Math.round(share * BAR_WIDTH);
  const rate = Math.round(done / Math.max((Date.now() - started) / 1000, 0.001));
  return (
    `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${(share * 100).toFixed(1).padStart(5)}%  ` +
    `${done}/${p.total} lines  ${p.counts.imported} imported  ${p.counts.rejected} rejected  ${rate}/s`
  );
};

/** `custodian import <file>`: stages the file, runs the import workflow with a progress bar, prints a summary. */
export const runImportCommand = async (args: string[], deps: ImportCommandDeps): Promise<number> => {
  const { file, mode } = parseArgs(args);
  const stdout = deps.stdout ?? process.stdout;
  const stderr = deps.stderr ?? process.stderr;
  const importId = randomUUID();
  const staged = await stageImportFile(deps.stagingDir, importId, createReadStream(file), { maxBytes: 2 ** 50 });
  const input: SubjectImportInput = {
    importId,
    mode,
    requestedBy: `cli:${userInfo().username}`,
    totalLines: staged.lines,
    stagedBytes: staged.bytes,
  };
  const handle = await deps.client.workflow
    .start<typeof subjectImport>('subjectImport', {
      taskQueue: deps.taskQueue,
      workflowId: importWorkflowId(importId),
      args: [input],
    })
    .catch(async (err: unknown) => {
      await removeStagedFile(deps.stagingDir, importId);
      throw err;
    });
  stderr.write(`import ${importId}: ${staged.lines} lines, ${staged.bytes} bytes (workflow ${handle.workflowId})\n`);

  const started = Date.now();
  let lastLine = '';
  const draw = async () => {
    const progress = await handle.query<ImportProgress>(IMPORT_PROGRESS_QUERY).catch(() => undefined);
    if (!progress) return;
    const line = bar(progress, started);
    if (stderr.isTTY) stderr.write(`\r${line}`);
    else if (line !== lastLine) stderr.write(`${line}\n`);
    lastLine = line;
  };
  let drawing: Promise<void> = Promise.resolve();
  const timer = setInterval(
    () => {
      drawing = drawing.then(draw);
    },
    deps.pollMs ?? (stderr.isTTY ? 250 : 5000),
  );
  let report: ImportReport | undefined;
  let failure: unknown;
  try {
    report = await handle.result();
  } catch (err) {
    failure = err;
  } finally {
    clearInterval(timer);
    await drawing;
    if (stderr.isTTY && lastLine) stderr.write('\n');
  }
  if (!report) {
    stderr.write(`import ${importId} did not complete: ${(failure as Error)?.message ?? String(failure)}\n`);
    return 1;
  }
  const seconds = (Date.now() - started) / 1000;
  stdout.write(
    [
      `import ${importId} ${report.status} in ${seconds.toFixed(1)} s`,
      `  total       ${report.total}`,
      `  imported    ${report.imported}`,
      `  updated     ${report.updated}`,
      `  duplicates  ${report.duplicates}`,
      `  rejected    ${report.rejected}`,
      ...(report.unclassifiedFields.length
        ? [`  unclassified fields (encrypted as personal): ${report.unclassifiedFields.join(', ')}`]
        : []),
      '',
    ].join('\n'),
  );
  if (deps.database && report.rejected > 0) {
    const rejects = await deps.database.db
      .select()
      .from(importRejects)
      .where(eq(importRejects.importId, importId))
      .orderBy(asc(importRejects.line))
      .limit(SHOWN_REJECTS);
    stdout.write(
      `first rejected lines:\n${rejects.map((r) => `  line ${r.line}: ${r.reason} (${r.message})`).join('\n')}\n`,
    );
  }
  return report.status === 'completed' ? 0 : 1;
};

/** `custodian import <file>`: against TEMPORAL_ADDRESS/DATABASE_URL, or those of a running `custodian start`. */
export const importCommand = async (args: string[]): Promise<number> => {
  const config = loadConfig();
  const running = readRuntimeFile(config.dataDir);
  const address = config.TEMPORAL_ADDRESS ?? running?.temporalAddress;
  const databaseUrl = config.DATABASE_URL ?? running?.databaseUrl;
  if (!address) throw new ConfigError('TEMPORAL_ADDRESS: required, or run `custodian start` first');
  const { keyring } = await loadKeyring({ env: config, dataDir: config.dataDir, allowGenerate: false });
  const clients = await connectClient(address, config, keyring);
  const database = databaseUrl ? connect(databaseUrl, { max: 1 }) : undefined;
  try {
    return await runImportCommand(args, {
      client: clients.client,
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      stagingDir: importStagingDir(config),
      database,
    });
  } finally {
    await clients.close();
    await database?.close();
  }
};
