import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { readManifest, restoreBackup, type RestoreOutcome } from '../activities/backup-restore';
import { backupStorageFor, type BackupStorage } from '../activities/backup-storage';
import { migrationsFolder, runMigrations } from '../db/migrate';
import { summarizeReasons, type BackupManifest, type RestoreTestTable } from '../domain/backup';
import { ConfigError, loadConfig } from '../runtime/config';
import { loadKeyring, type Keyring } from '../runtime/keyring';
import { progressBar } from './backup';

const USAGE =
  'usage: custodian restore --backup <id> --target-url <postgres url> [--keyring-backup <id> | --without-keyring]';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const parseArgs = (args: string[]) => {
  const o: { backupId?: string; targetUrl?: string; keyringBackupId?: string; withoutKeyring: boolean } = {
    withoutKeyring: false,
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new ConfigError(`${arg} needs a value\n${USAGE}`);
      return v;
    };
    if (arg === '--backup') o.backupId = value().toLowerCase();
    else if (arg === '--target-url') o.targetUrl = value();
    else if (arg === '--keyring-backup') o.keyringBackupId = value().toLowerCase();
    else if (arg === '--without-keyring') o.withoutKeyring = true;
    else throw new ConfigError(`unknown argument ${arg}\n${USAGE}`);
  }
  if (!o.backupId || !UUID.test(o.backupId)) throw new ConfigError(`--backup: a backup ID is required\n${USAGE}`);
  if (o.keyringBackupId !== undefined && !UUID.test(o.keyringBackupId))
    throw new ConfigError(`--keyring-backup: must be a backup ID\n${USAGE}`);
  if (!o.targetUrl || !/^postgres(ql)?:\/\//.test(o.targetUrl))
    throw new ConfigError(`--target-url: a postgres:// URL is required\n${USAGE}`);
  return { ...o, backupId: o.backupId, targetUrl: o.targetUrl };
};

/** Relations outside the system schemas: a restore goes only into a database that has none. */
const relationsIn = async (sql: postgres.Sql): Promise<number> => {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_(toast|temp)'`;
  return row!.n;
};

/**
 * Applies exactly the migrations the backed-up database had (the manifest says how many), so every table has the
 * columns the backup holds; the rest run after the load. A backup from a newer Custodian is refused.
 */
const migrateToBackup = async (url: string, schema: BackupManifest['schema']) => {
  const journal = JSON.parse(await readFile(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as {
    entries: { when: number; tag: string }[];
  };
  if (schema.migrations > journal.entries.length)
    throw new ConfigError(
      `the backup was made after ${schema.migrations} migrations; this Custodian knows ${journal.entries.length}: restore with the newer version`,
    );
  const entries = journal.entries.slice(0, schema.migrations);
  if (schema.lastMigrationAt !== null && entries.at(-1)?.when !== schema.lastMigrationAt)
    throw new ConfigError("the backup's migration history differs from this Custodian's");
  const folder = await mkdtemp(join(tmpdir(), 'custodian-restore-migrations-'));
  try {
    await mkdir(join(folder, 'meta'));
    await writeFile(join(folder, 'meta', '_journal.json'), JSON.stringify({ ...journal, entries }));
    for (const e of entries) await copyFile(join(migrationsFolder, `${e.tag}.sql`), join(folder, `${e.tag}.sql`));
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await migrate(drizzle(sql), { migrationsFolder: folder });
    } finally {
      await sql.end({ timeout: 5 });
    }
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
};

class Refused extends Error {
  constructor(
    readonly backupId: string,
    readonly outcome: RestoreOutcome,
  ) {
    super(`backup ${backupId} failed verification: ${summarizeReasons(outcome.reasons)}`);
  }
}

export interface RestoreReport {
  backupId: string;
  tables: RestoreTestTable[];
  keyring: { backupId: string; tables: RestoreTestTable[] } | { missing: string } | null;
}

export interface RestoreOptions {
  storage: BackupStorage;
  keyring: Keyring;
  backupId: string;
  targetUrl: string;
  /** Default: the keyring backup the data backup's manifest names; null restores without the wrapped keys. */
  keyringBackupId?: string | null;
  onProgress?(line: string): void;
}

/**
 * Disaster recovery: verifies the backup's manifest, refuses a target that holds any relation, migrates the target to
 * the backup's schema, loads every table and the keyring backup in one transaction, verifies each table's rows and
 * SHA-256 against the manifest (a mismatch rolls everything back), then applies the remaining migrations.
 */
export const restoreIntoEmptyDatabase = async (o: RestoreOptions): Promise<RestoreReport> => {
  const checked = await readManifest(o.storage, o.keyring, o.backupId);
  if (!checked.ok) throw new ConfigError(`backup ${o.backupId}: ${checked.reason.code}`);
  const manifest = checked.signed.manifest;
  if (manifest.kind !== 'data') throw new ConfigError(`backup ${o.backupId} is a keyring backup: name its data backup`);

  const target = postgres(o.targetUrl, { max: 1, onnotice: () => {} });
  try {
    const present = await relationsIn(target);
    if (present > 0)
      throw new ConfigError(
        `the target database is not empty (${present} relations): restore only into an empty database`,
      );
  } finally {
    await target.end({ timeout: 5 });
  }
  await migrateToBackup(o.targetUrl, manifest.schema);

  const keyringId = o.keyringBackupId === undefined ? manifest.keyringBackupId : (o.keyringBackupId ?? undefined);
  let keyringState: RestoreReport['keyring'] = null;
  if (keyringId) {
    const keys = await readManifest(o.storage, o.keyring, keyringId);
    keyringState = keys.ok ? { backupId: keyringId, tables: [] } : { missing: `${keyringId}: ${keys.reason.code}` };
  }

  const sql = postgres(o.targetUrl, { max: 1, onnotice: () => {} });
  let tables: RestoreTestTable[] = [];
  try {
    await sql.begin(async (tx) => {
      const into = async (backupId: string, total: number) => {
        const outcome = await restoreBackup({
          storage: o.storage,
          keyring: o.keyring,
          backupId,
          tx,
          async target(table) {
            const [exists] = await tx<
              { ok: boolean }[]
            >`select to_regclass(${`public."${table.name}"`}) is not null as ok`;
            if (!exists?.ok) throw Object.assign(new Error(`no table ${table.name}`), { code: `target-table-missing` });
            return { schema: 'public', relation: table.name };
          },
          onProgress: (p) => o.onProgress?.(progressBar(p.table ?? p.phase, p.bytesDone, total)),
        });
        if (outcome.reasons.length > 0) throw new Refused(backupId, outcome);
        return outcome.tables;
      };
      tables = await into(o.backupId, manifest.ciphertext.bytes);
      if (keyringState && 'backupId' in keyringState) {
        const keys = await readManifest(o.storage, o.keyring, keyringState.backupId);
        const total = keys.ok ? keys.signed.manifest.ciphertext.bytes : 0;
        keyringState.tables = await into(keyringState.backupId, total);
      }
    });
  } catch (err) {
    if (err instanceof Refused) throw new ConfigError(err.message);
    throw err;
  } finally {
    await sql.end({ timeout: 5 });
  }
  await runMigrations(o.targetUrl);
  return { backupId: o.backupId, tables, keyring: keyringState };
};

/** `custodian restore --backup <id> --target-url <url>`: see restoreIntoEmptyDatabase; a summary on stdout. */
export const restoreCommand = async (args: string[]): Promise<number> => {
  const a = parseArgs(args);
  const config = loadConfig();
  const { keyring } = await loadKeyring({ env: config, dataDir: config.dataDir, allowGenerate: false });
  const stderr = process.stderr;
  let last = '';
  const report = await restoreIntoEmptyDatabase({
    storage: backupStorageFor(config),
    keyring,
    backupId: a.backupId,
    targetUrl: a.targetUrl,
    keyringBackupId: a.withoutKeyring ? null : a.keyringBackupId,
    onProgress: (line) => {
      if (line === last) return;
      last = line;
      stderr.write(stderr.isTTY ? `\r${line}` : `${line}\n`);
    },
  });
  if (stderr.isTTY && last) stderr.write('\n');
  const rows = (t: RestoreTestTable) =>
    `  ${t.table.padEnd(28)} ${String(t.restoredRows).padStart(10)} rows  sha256 ${t.restoredSha256?.slice(0, 16)}… ok`;
  const lines = [`restored backup ${report.backupId}: ${report.tables.length} tables, every hash matches the manifest`];
  lines.push(...report.tables.map(rows));
  if (report.keyring && 'backupId' in report.keyring) {
    lines.push(
      `keyring backup ${report.keyring.backupId}: wrapped data keys restored`,
      ...report.keyring.tables.map(rows),
    );
  } else if (report.keyring) {
    lines.push(`WARNING: keyring backup ${report.keyring.missing}: no wrapped data key was restored;`);
    lines.push('         every personal value in this database stays unreadable (as after crypto-shredding)');
  } else {
    lines.push('WARNING: restored without a keyring backup: personal values stay unreadable');
  }
  lines.push('next: point DATABASE_URL at the target and run `custodian migrate` with the service role to grant it');
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
};
