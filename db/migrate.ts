import { fileURLToPath } from 'node:url';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { grantServiceRole } from './roles';

export const migrationsFolder = fileURLToPath(new URL('./migrations', import.meta.url));

export interface MigrationOptions {
  /** The role the service runs as: its grants are renewed after the migrations, on the same connection. */
  serviceRole?: string;
}

/**
 * Applies the committed drizzle-kit migrations over a single connection, as the role that owns the
 * tables, then grants the service role what it needs on whatever the migrations created.
 */
export const runMigrations = async (url: string, options: MigrationOptions = {}): Promise<void> => {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await migrate(drizzle(sql), { migrationsFolder });
    if (options.serviceRole) await grantServiceRole(sql, options.serviceRole);
  } finally {
    await sql.end({ timeout: 5 });
  }
};

/**
 * The service role to grant when migrations run as a different role than the service: the user of
 * DATABASE_URL, if CUSTODIAN_MIGRATION_DATABASE_URL names another one.
 */
export const serviceRoleOf = (serviceUrl: string, migrationUrl: string): string | undefined => {
  const service = decodeURIComponent(new URL(serviceUrl).username);
  const owner = decodeURIComponent(new URL(migrationUrl).username);
  return service && service !== owner ? service : undefined;
};
