import postgres from 'postgres';

/**
 * The service (API and workers) runs as a role that owns nothing: the owner of a table can disable its
 * triggers, so the append-only audit tables are only append-only for a role that does not own them.
 */
export interface ServiceRole {
  role: string;
  /** Set (or reset) the role's password; omit where the role was made elsewhere (compose's init script). */
  password?: string;
}

/** Always append-only, besides any table guarded by the refusing trigger (found at grant time). */
const APPEND_ONLY = ['audit_log', 'audit_checkpoints'];

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

const appendOnlyTables = async (sql: postgres.Sql): Promise<string[]> => {
  const rows = await sql<{ table: string }[]>`
    select distinct c.relname as table from pg_trigger t
      join pg_class c on c.oid = t.tgrelid
      join pg_namespace n on n.oid = c.relnamespace
      join pg_proc p on p.oid = t.tgfoid
    where n.nspname = 'public' and p.proname = 'audit_log_refuse_change'`;
  return [...new Set([...APPEND_ONLY, ...rows.map((r) => r.table)])];
};

/**
 * Grants the service role what the service does and nothing else, on the connection's database: CONNECT
 * and TEMPORARY (the import stages upserts in a temp table), USAGE on `public`, SELECT/INSERT/UPDATE/DELETE
 * on every table but the append-only ones (SELECT and INSERT), and sequences. Run after every migration;
 * it revokes first, in the same transaction, so a table that became append-only loses UPDATE and DELETE.
 */
export const grantServiceRole = async (sql: postgres.Sql, role: string): Promise<void> => {
  const [exists] = await sql`select 1 from pg_roles where rolname = ${role}`;
  if (!exists) throw new Error(`the service role '${role}' does not exist; create it (see deploy/postgres/init.sh)`);
  const appendOnly = await appendOnlyTables(sql);
  const r = ident(role);
  await sql.begin(async (tx) => {
    const [{ database }] = (await tx`select current_database() as database`) as unknown as [{ database: string }];
    await tx.unsafe(`grant connect, temporary on database ${ident(database)} to ${r}`);
    await tx.unsafe(`grant usage on schema public to ${r}`);
    await tx.unsafe(`revoke all on all tables in schema public from ${r}`);
    await tx.unsafe(`grant select, insert, update, delete on all tables in schema public to ${r}`);
    for (const table of appendOnly) {
      const [present] = await tx`select 1 from pg_tables where schemaname = 'public' and tablename = ${table}`;
      if (!present) continue;
      await tx.unsafe(`revoke update, delete on table public.${ident(table)} from ${r}`);
    }
    await tx.unsafe(`grant usage, select on all sequences in schema public to ${r}`);
  });
};

/**
 * Creates the service role if absent (no superuser, no CREATEDB/CREATEROLE/REPLICATION), sets its
 * password when given, and grants it the service's privileges. Idempotent; needs a role that may
 * create roles (the embedded cluster's superuser) unless the role exists already.
 */
export const provisionServiceRole = async (ownerUrl: string, service: ServiceRole): Promise<void> => {
  const sql = postgres(ownerUrl, { max: 1, onnotice: () => {} });
  try {
    const r = ident(service.role);
    const [exists] = await sql`select 1 from pg_roles where rolname = ${service.role}`;
    if (!exists) {
      await sql.unsafe(`create role ${r} login nosuperuser nocreatedb nocreaterole noreplication nobypassrls`);
    }
    if (service.password !== undefined) {
      // A utility statement takes no parameters: quote the literal on the server.
      const [{ statement }] = (await sql`
        select format('alter role %I with login password %L', ${service.role}::text, ${service.password}::text) as statement`) as unknown as [
        { statement: string },
      ];
      await sql.unsafe(statement);
    }
    await grantServiceRole(sql, service.role);
  } finally {
    await sql.end({ timeout: 5 });
  }
};
