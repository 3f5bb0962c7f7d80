import type { Client } from '@temporalio/client';
import { loadCatalog } from '../activities/catalog';
import type { Database } from '../db/client';
import type { Catalog } from '../domain/catalog';
import type { ScheduleDefinition } from '../domain/schedules';
import { importStagingDir, type Config } from './config';
import type { Keyring } from './keyring';
import type { Logger } from './logger';
import { createMetrics, type Metrics } from './metrics';
import { loadSchedules } from './schedules';

/**
 * Everything a route module or an activity may use, built once per process (`buildServices`) and passed
 * down; modules take what they need by destructuring. A new dependency is one field here.
 */
export interface Services {
  config: Config;
  /** The pool of this process's role (the API and the worker each have their own). */
  database: Database;
  temporal: Client;
  keyring: Keyring;
  catalog: Catalog;
  metrics: Metrics;
  logger: Logger;
  /** Wall-clock time outside workflows; tests may pin it. */
  clock: () => Date;
  /** Where import uploads are staged; the API writes and the workers read it, so it is shared storage. */
  stagingDir: string;
  /** The recurring reviews (declared in domain/schedules.ts, overridden by CUSTODIAN_SCHEDULES_FILE). */
  schedules: ScheduleDefinition[];
}

export type ServiceParts = Pick<Services, 'config' | 'database' | 'temporal' | 'keyring' | 'logger'> &
  Partial<Pick<Services, 'catalog' | 'metrics' | 'clock' | 'stagingDir' | 'schedules'>>;

/** Fills in what derives from the configuration: the catalog file is read here, once, not per request. */
export const buildServices = (parts: ServiceParts): Services => ({
  ...parts,
  catalog: parts.catalog ?? loadCatalog(parts.config.CUSTODIAN_CATALOG_FILE),
  metrics: parts.metrics ?? createMetrics(),
  clock: parts.clock ?? (() => new Date()),
  stagingDir: parts.stagingDir ?? importStagingDir(parts.config),
  schedules: parts.schedules ?? loadSchedules(parts.config),
});
