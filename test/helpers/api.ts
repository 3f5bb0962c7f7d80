import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, type App } from '../../api/app';
import type { SubjectApiDeps } from '../../api/routes/subject-imports';
import { createUser, issueApiKey, type Role } from '../../api/api-keys';
import type { Metrics } from '../../api/metrics';
import type { Db } from '../../db/client';
import { createLogger } from '../../runtime/logger';
import { createTestDatabase, type TestDatabase } from './db';
import { connectTestTemporal, type TestTemporal } from './temporal';

/** A user with the given role and a fresh API key, created the way the API does it (audited). */
export const seedPrincipal = async (db: Db, role: Role, name = `test ${role}`) => {
  const user = await createUser(db, { name, role }, 'test:seed');
  const { key, id: keyId } = await issueApiKey(db, user.id, 'test:seed');
  return { userId: user.id, keyId, key };
};

/** Headers for an authenticated JSON request. */
export const bearer = (key: string): Record<string, string> => ({
  authorization: `Bearer ${key}`,
  'content-type': 'application/json',
});

/** A response's JSON body, typed by the test that knows its shape. */
export const readJson = <T>(res: Response): Promise<T> => res.json() as Promise<T>;

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  fields?: { path: string; message: string }[];
}

/** The parts of an OpenAPI document the tests look at. */
export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, { security?: unknown; 'x-roles'?: string[] }>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}

export interface TestApi {
  app: App;
  metrics: Metrics;
  database: TestDatabase;
  temporal: TestTemporal;
  /** Every JSON log line the app wrote, for assertions on what is (not) logged. */
  logLines: string[];
  subjects: SubjectApiDeps;
  close(): Promise<void>;
}

/** The app as production builds it, over a fresh database and the run's Temporal dev server. */
export const createTestApi = async (options: { bodyLimitBytes?: number } = {}): Promise<TestApi> => {
  const database = await createTestDatabase();
  const temporal = await connectTestTemporal();
  const logLines: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => void logLines.push(line) });
  const stagingDir = mkdtempSync(join(tmpdir(), 'custodian-api-staging-'));
  const subjects: SubjectApiDeps = { keyring: temporal.keyring, stagingDir, taskQueue: temporal.taskQueue('api') };
  const { app, metrics } = createApp({
    db: database,
    temporal: temporal.client,
    logger,
    bodyLimitBytes: options.bodyLimitBytes ?? 64 * 1024,
    subjects,
  });
  return {
    app,
    metrics,
    database,
    temporal,
    logLines,
    subjects,
    close: async () => {
      await temporal.close();
      await database.drop();
      rmSync(stagingDir, { recursive: true, force: true });
    },
  };
};
