import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { count } from 'drizzle-orm';
import { createUser, issueApiKey } from '../activities/users';
import type { Db } from '../db/client';
import { users } from '../db/schema';

export const adminKeyFile = (dataDir: string) => join(dataDir, 'admin-api-key');

/**
 * On a database without users, creates the first admin and its API key, writes the key to
 * `<data dir>/admin-api-key` (0600) and returns it so the caller prints it once.
 */
export const ensureFirstAdmin = async (db: Db, dataDir: string): Promise<string | undefined> => {
  const [row] = await db.select({ n: count() }).from(users);
  if ((row?.n ?? 0) > 0) return undefined;
  const user = await createUser(db, { name: 'admin', role: 'admin' }, { actor: 'system:first-start' });
  const { key } = await issueApiKey(db, user.id, { actor: 'system:first-start' });
  writeFileSync(adminKeyFile(dataDir), `${key}\n`, { mode: 0o600 });
  return key;
};
