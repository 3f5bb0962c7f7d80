import type { Db } from '../db/client';
import type { Catalog } from '../domain/catalog';
import type { Keyring } from '../runtime/keyring';
import { auditActivities } from './audit';
import { importActivities } from './subject-import';

export interface ActivityDeps {
  db: Db;
  keyring: Keyring;
  /** Where import uploads are staged (`importStagingDir(config)`), shared with the API. */
  stagingDir: string;
  /** The data catalog: loaded from CUSTODIAN_CATALOG_FILE (or the defaults) when omitted. */
  catalog?: Catalog;
}

export const createActivities = (d: ActivityDeps) => ({
  ...auditActivities(d),
  ...importActivities(d),
});
export type Activities = ReturnType<typeof createActivities>;
