import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type postgres from 'postgres';
import type { BackupManifest, BackupTable } from '../domain/backup';
import { migrationsFolder } from '../db/migrate';

/*
 * The one definition of how a table becomes bytes, shared by the backup, the restore test and `custodian
 * restore`: `COPY (SELECT <columns> FROM <table> ORDER BY <key> ) TO STDOUT` in text format under fixed
 * settings, hashed with SHA-256, rows counted by newline (text COPY escapes newlines inside values). Whoever
 * computes a table's hash computes it here, so the three cannot drift apart.
 */

/** Session settings that change COPY's text output; set locally in every transaction that hashes. */
export const COPY_SETTINGS: Readonly<Record<string, string>> = {
  TimeZone: 'UTC',
  DateStyle: 'ISO, MDY',
  IntervalStyle: 'postgres',
  extra_float_digits: '1',
  bytea_output: 'hex',
  client_encoding: 'UTF8',
  // A backup of a large database outlives the pool's per-statement limit; the activity heartbeat bounds it.
  statement_timeout: '0',
};

/** Tables that hold key material: never in a data backup, only in the short-lived keyring backup. */
export const KEY_MATERIAL_TABLES: readonly string[] = ['subject_keys'];

export type TableShape = Pick<BackupTable, 'name' | 'columns' | 'orderBy'>;
export interface TableDigestResult {
  rows: number;
  bytes: number;
  sha256: string;
}

type Sql = postgres.Sql | postgres.TransactionSql | postgres.ReservedSql;

export const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

export const applyCopySettings = async (tx: Sql): Promise<void> => {
  for (const [name, value] of Object.entries(COPY_SETTINGS)) await tx`select set_config(${name}, ${value}, true)`;
};

const COLLATABLE = /^(text|character varying|character|citext|name)(\(\d+\))?(\[\])?$/;
// Types are those format_type gave the exporter; refuse anything else before it reaches a CREATE TABLE.
const TYPE = /^[a-z][a-z0-9 _]*(\(\d+(,\d+)?\))?( with(out)? time zone)?(\[\])*$/;

/** The ORDER BY key: byte order for text (COLLATE "C"), so every database sorts alike, whatever its collation. */
const orderBy = (shape: TableShape): string =>
  shape.orderBy
    .map((name) => {
      const column = shape.columns.find((c) => c.name === name);
      if (!column) throw new Error(`order column ${name} is not a column of ${shape.name}`);
      return COLLATABLE.test(column.type) ? `${ident(name)} COLLATE "C"` : ident(name);
    })
    .join(', ');

const columnList = (shape: TableShape) => shape.columns.map((c) => ident(c.name)).join(', ');

/** The COPY that exports, and re-reads for hashing, a table (`schema.relation`, which holds `shape`'s columns). */
export const copyOutStatement = (shape: TableShape, schema = 'public', relation = shape.name): string =>
  `COPY (SELECT ${columnList(shape)} FROM ${ident(schema)}.${ident(relation)} ORDER BY ${orderBy(shape)}) TO STDOUT`;

export const copyInStatement = (shape: TableShape, schema = 'public', relation = shape.name): string =>
  `COPY ${ident(schema)}.${ident(relation)} (${columnList(shape)}) FROM STDIN`;

/** A table with `shape`'s columns and types and nothing else: no constraints, defaults, indexes or triggers. */
export const createBareTableStatement = (shape: TableShape, relation: string, temporary: boolean): string => {
  const columns = shape.columns.map((c) => {
    if (!TYPE.test(c.type)) throw new Error(`column ${shape.name}.${c.name} has an unexpected type`);
    return `${ident(c.name)} ${c.type}`;
  });
  return `CREATE ${temporary ? 'TEMPORARY ' : ''}TABLE ${temporary ? '' : 'public.'}${ident(relation)} (${columns.join(', ')})${temporary ? ' ON COMMIT DROP' : ''}`;
};

/** The public tables, their columns and primary keys (all columns for a table without one), by name. */
export const describeTables = async (tx: Sql, include: (name: string) => boolean): Promise<TableShape[]> => {
  const rows = await tx<{ name: string; columns: { name: string; type: string }[]; pk: string[] | null }[]>`
    select c.relname as name,
      (select json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod)) order by a.attnum)
         from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped) as columns,
      (select array_agg(a.attname::text order by k.ord)
         from pg_index i cross join unnest(i.indkey) with ordinality as k(attnum, ord)
         join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
        where i.indrelid = c.oid and i.indisprimary) as pk
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p')
    order by c.relname collate "C"`;
  const references = await tx<{ from: string; to: string }[]>`
    select f.relname as from, t.relname as to from pg_constraint k
      join pg_class f on f.oid = k.conrelid join pg_class t on t.oid = k.confrelid
      join pg_namespace n on n.oid = f.relnamespace
    where k.contype = 'f' and n.nspname = 'public' and k.conrelid <> k.confrelid`;
  const shapes = rows
    .filter((r) => include(r.name))
    .map((r) => ({ name: r.name, columns: r.columns, orderBy: r.pk ?? r.columns.map((c) => c.name) }));
  return referencedFirst(shapes, references);
};

/** Tables a foreign key references come before the tables that reference them (then by name), so a load in file order satisfies every key. */
const referencedFirst = (shapes: TableShape[], references: { from: string; to: string }[]): TableShape[] => {
  const ordered: TableShape[] = [];
  const placed = new Set<string>();
  const names = new Set(shapes.map((s) => s.name));
  const needs = (name: string) => references.filter((r) => r.from === name && names.has(r.to)).map((r) => r.to);
  let rest = shapes;
  while (rest.length > 0) {
    const ready = rest.filter((s) => needs(s.name).every((n) => placed.has(n)));
    // A cycle (none today) cannot be ordered: the rest go by name and a load reports the key it breaks.
    const next = ready.length > 0 ? ready : rest;
    for (const s of next) placed.add(s.name);
    ordered.push(...next);
    rest = rest.filter((s) => !placed.has(s.name));
  }
  return ordered;
};

/** SHA-256, byte and row count of a table's COPY text, fed chunk by chunk. */
export class TableDigest {
  rows = 0;
  bytes = 0;
  private readonly hash: Hash = createHash('sha256');

  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    for (let at = chunk.indexOf(0x0a); at >= 0; at = chunk.indexOf(0x0a, at + 1)) this.rows += 1;
  }

  result(): TableDigestResult {
    return { rows: this.rows, bytes: this.bytes, sha256: this.hash.digest('hex') };
  }
}

type Streaming = postgres.PendingQuery<postgres.Row[]> & { reject(err: unknown): void };

/**
 * postgres.js reports an error that arrives during or after a COPY (a refused value, a cancelled statement) only
 * through the query's `reject`, which is a no-op once the query has resolved with its stream: the stream would
 * wait forever. This makes such an error end the wait (see activities/subject-writer.ts).
 */
const interceptFailure = (query: Streaming): Promise<never> => {
  const failed = new Promise<never>((_, reject) => {
    const settle = query.reject;
    query.reject = (err: unknown) => {
      reject(err);
      settle(err);
    };
  });
  failed.catch(() => {});
  return failed;
};

/** The bytes of a `COPY … TO STDOUT`, with back-pressure; a server error fails the iteration. */
export async function* copyOut(tx: Sql, statement: string): AsyncGenerator<Buffer> {
  const query = tx.unsafe(statement) as unknown as Streaming;
  const failed = interceptFailure(query);
  const stream = (await Promise.race([query.readable(), failed])) as Readable;
  failed.catch((err: unknown) => stream.destroy(err as Error));
  try {
    for await (const chunk of stream) yield chunk as Buffer;
  } finally {
    // postgres.js pauses its socket when the stream's buffer is full and resumes it only from the stream's
    // read(); a COPY whose end arrived while paused leaves the rest of the reply (ReadyForQuery) unread, and the
    // connection's next query waits forever. The stream's read() resumes the socket.
    (stream as Readable & { _read(size: number): void })._read(0);
  }
}

/** Streams `source` into a `COPY … FROM STDIN`, with back-pressure; resolves when the server accepted it all. */
export const copyIn = async (tx: Sql, statement: string, source: AsyncIterable<Buffer>): Promise<void> => {
  const query = tx.unsafe(statement) as unknown as Streaming;
  const failed = interceptFailure(query);
  const until = <R>(step: Promise<R>): Promise<R> => Promise.race([step, failed]);
  const writable = (await until(query.writable())) as NodeJS.WritableStream & { destroy(err?: Error): void };
  const finished = until(once(writable as never, 'finish'));
  finished.catch(() => {});
  try {
    for await (const chunk of source) {
      if (!writable.write(chunk)) await until(once(writable as never, 'drain'));
    }
  } catch (err) {
    writable.destroy(err as Error);
    throw err;
  }
  writable.end();
  await finished;
};

/** Digest of `schema.relation` as COPY gives it back. */
export const digestTable = async (
  tx: Sql,
  shape: TableShape,
  schema = 'public',
  relation = shape.name,
): Promise<TableDigestResult> => {
  const digest = new TableDigest();
  for await (const chunk of copyOut(tx, copyOutStatement(shape, schema, relation))) digest.update(chunk);
  return digest.result();
};

interface JournalEntry {
  idx: number;
  when: number;
  tag: string;
}
export const readJournal = (folder = migrationsFolder): JournalEntry[] =>
  (JSON.parse(readFileSync(join(folder, 'meta', '_journal.json'), 'utf8')) as { entries: JournalEntry[] }).entries;

/**
 * How far the database is migrated: drizzle's own record when this role may read it, else this code's journal
 * (the service role owns nothing and may not see the `drizzle` schema; the service runs the code it migrated with).
 */
export const schemaVersion = async (tx: Sql): Promise<BackupManifest['schema']> => {
  const [readable] = await tx<{ ok: boolean }[]>`
    select coalesce(to_regclass('drizzle.__drizzle_migrations') is not null
      and has_table_privilege('drizzle.__drizzle_migrations', 'select'), false) as ok`;
  if (readable?.ok) {
    const [row] = await tx<{ migrations: number; last: string | null }[]>`
      select count(*)::int as migrations, max(created_at)::text as last from drizzle.__drizzle_migrations`;
    return { migrations: row!.migrations, lastMigrationAt: row!.last === null ? null : Number(row!.last) };
  }
  const journal = readJournal();
  return { migrations: journal.length, lastMigrationAt: journal.at(-1)?.when ?? null };
};
