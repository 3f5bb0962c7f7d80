import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities, type Activities } from '../../activities';
import { createApp, type App } from '../../api/app';
import { defaultCatalog } from '../../domain/catalog';
import { loadConfig, type Config } from '../../runtime/config';
import type { Keyring } from '../../runtime/keyring';
import { createLogger } from '../../runtime/logger';
import { loadSchedules } from '../../runtime/schedules';
import { buildServices, type Services } from '../../runtime/services';
import { bundleWorkflows } from '../../runtime/worker';
import { createTestDatabase, type TestDatabase } from './db';
import { connectTestTemporal, type TestTemporal } from './temporal';

export interface TestServices extends Services {
  /** The file's own database copy, and the run's Temporal dev server. */
  testDatabase: TestDatabase;
  testTemporal: TestTemporal;
  /** Every JSON log line written through `logger`, for assertions on what is (not) logged. */
  logLines: string[];
  close(): Promise<void>;
}

export interface TestServiceOverrides {
  /** Configuration values on top of the defaults (an empty environment). */
  config?: Partial<Config>;
  keyring?: Keyring;
  /** Reuse a database or Temporal connection instead of making new ones (they are then not closed here). */
  database?: TestDatabase;
  temporal?: TestTemporal;
  services?: Partial<Omit<Services, 'config'>>;
}

/**
 * Services as production builds them, over a fresh database copy, the run's dev server, a generated
 * keyring, the default catalog, a private staging directory and a task queue of their own.
 */
export const createTestServices = async (o: TestServiceOverrides = {}): Promise<TestServices> => {
  const [testDatabase, testTemporal] = await Promise.all([
    o.database ?? createTestDatabase(),
    o.temporal ?? connectTestTemporal(o.keyring),
  ]);
  const logLines: string[] = [];
  const stagingDir = mkdtempSync(join(tmpdir(), 'custodian-test-staging-'));
  const config: Config = {
    ...loadConfig({}),
    CUSTODIAN_BODY_LIMIT_BYTES: 64 * 1024,
    TEMPORAL_TASK_QUEUE: testTemporal.taskQueue('test'),
    // Schedules live on the run's shared dev server: tests never upsert the real ones, and their own have unique IDs.
    CUSTODIAN_SCHEDULES_ENABLED: false,
    ...o.config,
  };
  const services = buildServices({
    config,
    database: testDatabase,
    temporal: testTemporal.client,
    keyring: testTemporal.keyring,
    catalog: defaultCatalog,
    logger: createLogger('debug', { write: (line: string) => void logLines.push(line) }),
    stagingDir,
    schedules: loadSchedules(config, { scheduleIdPrefix: `test-${randomUUID().slice(0, 8)}-` }),
    ...o.services,
  });
  return {
    ...services,
    testDatabase,
    testTemporal,
    logLines,
    close: async () => {
      if (!o.temporal) await testTemporal.close();
      if (!o.database) await testDatabase.drop();
      rmSync(stagingDir, { recursive: true, force: true });
    },
  };
};

export interface TestApp extends TestServices {
  app: App;
}

/** The app as production builds it, over test services (see createTestServices). */
export const createTestApp = async (o: TestServiceOverrides = {}): Promise<TestApp> => {
  const services = await createTestServices(o);
  return { ...services, app: createApp(services) };
};

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** One workflow bundle per test file (module), built on first use. */
export const testWorkflowBundle = () => (bundle ??= bundleWorkflows());

/**
 * A real worker on the services' task queue (or `taskQueue`), with the real activities unless the test
 * replaces some, and the services' payload codec. Run it with `worker.run()` or `worker.runUntil(…)`.
 */
export const createTestWorker = async (
  services: TestServices,
  o: { taskQueue?: string; activities?: Partial<Activities>; workflowBundle?: WorkflowBundleWithSourceMap } = {},
): Promise<Worker> =>
  Worker.create({
    connection: services.testTemporal.nativeConnection,
    taskQueue: o.taskQueue ?? services.config.TEMPORAL_TASK_QUEUE,
    workflowBundle: o.workflowBundle ?? (await testWorkflowBundle()),
    activities: { ...createActivities(services), ...o.activities },
    dataConverter: services.testTemporal.dataConverter,
  });
