import type { Db } from '../db/client';
import type { Keyring } from '../runtime/keyring';
import { auditActivities } from './audit';

export interface ActivityDeps {
  db: Db;
  keyring: Keyring;
}

export const createActivities = (d: ActivityDeps) => ({
  ...auditActivities(d),
});
export type Activities = ReturnType<typeof createActivities>;
