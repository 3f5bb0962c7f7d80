import type { Services } from '../runtime/services';
import { accessReviewActivities } from './access-reviews';
import { alertActivities } from './alerts';
import { auditActivities } from './audit';
import { backupActivities } from './backup';
import { backupRetentionActivities } from './backup-retention';
import { backupReviewActivities } from './backup-reviews';
import { campaignActivities } from './campaigns';
import { consentActivities } from './consents';
import { destructionActivities } from './destructions';
import { retentionSweepActivities } from './retention-sweep';
import { incidentActivities } from './incidents';
import { notifyActivities } from './notify';
import { requestActivities } from './requests';
import { obligationActivities } from './obligations';
import { restoreTestActivities } from './restore-test';
import { importActivities } from './subject-import';
import { qualityActivities } from './quality';
import { keyRotationActivities } from './key-rotation';

/** What activities may use: the process's services (a process adds its activities with one line below). */
export type ActivityDeps = Pick<
  Services,
  'database' | 'keyring' | 'catalog' | 'stagingDir' | 'config' | 'logger' | 'clock'
>;

export const createActivities = (s: ActivityDeps) => {
  const d = { ...s, db: s.database.db, prepareThreads: s.config.CUSTODIAN_IMPORT_THREADS };
  return {
    ...auditActivities(d),
    ...importActivities(d),
    ...notifyActivities(d),
    ...consentActivities(d),
    ...incidentActivities(d),
    ...requestActivities(d),
    ...campaignActivities(d),
    ...alertActivities(d),
    ...backupActivities(d),
    ...restoreTestActivities(d),
    ...backupRetentionActivities(d),
    ...backupReviewActivities(d),
    ...destructionActivities(d),
    ...retentionSweepActivities(d),
    ...qualityActivities(d),
    ...keyRotationActivities(d),
    ...accessReviewActivities(d),
    ...obligationActivities(d),
  };
};
export type Activities = ReturnType<typeof createActivities>;
