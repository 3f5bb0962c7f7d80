import { createActivities } from '../../activities';
import { defaultCatalog } from '../../domain/catalog';
import { loadConfig } from '../../runtime/config';
import { createLogger } from '../../runtime/logger';
import type { Services } from '../../runtime/services';

/**
 * The real activities over parts a test already holds, defaults for the rest. No vitest import here:
 * a worker in a child process (import-worker.ts) and the replay recorder use it too.
 */
export const activitiesFor = (parts: Pick<Services, 'database' | 'keyring' | 'stagingDir'> & Partial<Services>) =>
  createActivities({
    config: loadConfig({}),
    catalog: defaultCatalog,
    logger: createLogger('silent'),
    clock: () => new Date(),
    ...parts,
  });
