import postgres from 'postgres';
import { runMigrations } from '../db/migrate';
import { withDatabase } from '../runtime/database-url';

/**
 * A migrated database of the scenario's own beside the run's scratch database: the quality check and key rotation
 * read every subject, and subjects other scenarios left were written under their own keyrings.
 */
export const ownDatabase = async (runUrl: string, name: string): Promise<{ url: string; drop(): Promise<void> }> => {
  const admin = postgres(runUrl, { max: 1, onnotice: () => {} });
  const dbName = `${new URL(runUrl).pathname.slice(1)}_${name}`;
  await admin.unsafe(`create database "${dbName}"`);
  const url = withDatabase(runUrl, dbName);
  await runMigrations(url);
  return {
    url,
    drop: async () => {
      await admin.unsafe(`drop database if exists "${dbName}" with (force)`);
      await admin.end();
    },
  };
};
