import { randomUUID } from 'node:crypto';
import { z } from '@hono/zod-openapi';
import { and, desc, eq, type SQL } from 'drizzle-orm';
import { backups, restoreTests } from '../../db/schema';
import {
  BACKUP_KINDS,
  BACKUP_STATUSES,
  BackupRequest,
  RESTORE_TEST_STATUSES,
  type BackupInput,
  type RestoreTestInput,
} from '../../domain/backup';
import { backupWorkflowId, restoreTestWorkflowId } from '../../domain/ids';
import type { Services } from '../../runtime/services';
import type { backup as backupWorkflow } from '../../workflows/backup';
import type { restoreTest as restoreTestWorkflow } from '../../workflows/restore-test';
import { actorOf, defineRoute, endpoint, jsonResponse, v1Resource, type Principal } from '../auth';
import { ApiError, problemResponse } from '../errors';
import { IdParam } from '../params';
import { IdempotencyHeaders, requestHash, startProcess } from '../processes';

const Instant = z.iso.datetime().nullable();
const tags = ['backups'];

const BackupStarted = z.object({ id: z.uuid(), workflowId: z.string() }).openapi('BackupStarted');
const RestoreTestStarted = z
  .object({ id: z.uuid(), backupId: z.uuid(), workflowId: z.string() })
  .openapi('RestoreTestStarted');

const LastRestoreTest = z
  .object({ id: z.uuid(), status: z.enum(['pass', 'fail']), at: z.iso.datetime() })
  .nullable()
  .openapi({ description: 'The latest restore test to finish; null while untested' });

const BackupSummary = z
  .object({
    id: z.uuid(),
    kind: z
      .enum(BACKUP_KINDS)
      .openapi({ description: '`data`: every table but the wrapped keys; `keyring`: those keys' }),
    status: z.enum(BACKUP_STATUSES),
    phase: z.string().nullable(),
    bytesDone: z.number().int().openapi({ description: 'Table bytes exported so far' }),
    startedAt: z.iso.datetime(),
    finishedAt: Instant,
    snapshotAt: Instant.openapi({ description: 'The instant the data is from' }),
    sizeBytes: z.number().int().nullable().openapi({ description: 'Encrypted bytes in storage' }),
    durationMs: z.number().int().nullable(),
    restoreTest: LastRestoreTest,
  })
  .openapi('BackupSummary');

const RestoreTest = z
  .object({
    id: z.uuid(),
    status: z.enum(RESTORE_TEST_STATUSES),
    trigger: z.string(),
    requestedBy: z.string(),
    phase: z.string().nullable(),
    bytesDone: z.number().int().openapi({ description: 'Encrypted bytes read so far' }),
    reasons: z.array(z.record(z.string(), z.unknown())).openapi({
      description: 'Why it failed: `{ code, frame?, table?, stage?, expected?, actual? }` — never a value',
    }),
    tables: z
      .array(z.record(z.string(), z.unknown()))
      .openapi({ description: 'Per table: rows and SHA-256 expected and restored' }),
    rtoMs: z.number().int().nullable().openapi({ description: 'How long the restore took' }),
    rpoMs: z.number().int().nullable().openapi({ description: 'How old the restored data was when the test began' }),
    startedAt: z.iso.datetime(),
    finishedAt: Instant,
    workflowId: z.string().nullable(),
    runId: z.string().nullable(),
  })
  .openapi('RestoreTest');

const BackupDetail = z
  .object({
    ...BackupSummary.shape,
    requestedBy: z.string(),
    keyringBackupId: z.uuid().nullable().openapi({ description: 'The keyring backup taken in the same snapshot' }),
    dataBackupId: z.uuid().nullable().openapi({ description: 'For a keyring backup: the data backup it goes with' }),
    retainUntil: Instant.openapi({ description: 'A keyring backup is deleted then' }),
    deletedAt: Instant,
    error: z.string().nullable(),
    manifest: z.record(z.string(), z.unknown()).nullable().openapi({
      description: 'The signed manifest `{ manifest, signature }` (Ed25519, the public-key command’s key)',
    }),
    restoreTests: z.array(RestoreTest),
    workflowId: z.string().nullable(),
  })
  .openapi('Backup');

const BackupQuery = z
  .object({
    kind: z.enum(BACKUP_KINDS).optional(),
    status: z.enum(BACKUP_STATUSES).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
  })
  .strict();

const start = defineRoute({
  roles: ['owner'],
  method: 'post',
  path: '/backups',
  tags,
  summary: 'Back up now (starts workflow backup-{id}: data and keyring backups, then a restore test)',
  request: {
    headers: IdempotencyHeaders,
    body: { required: false, content: { 'application/json': { schema: BackupRequest } } },
  },
  responses: {
    202: jsonResponse(BackupStarted, 'The backup was started'),
    200: jsonResponse(BackupStarted, 'The same Idempotency-Key and request started it before'),
    409: problemResponse('Idempotency-Key reused with another request'),
  },
});

const list = defineRoute({
  roles: ['owner', 'auditor'],
  method: 'get',
  path: '/backups',
  tags,
  summary: 'Backups, newest first: status, size, duration and the latest restore test',
  request: { query: BackupQuery },
  responses: { 200: jsonResponse(z.object({ backups: z.array(BackupSummary) }).openapi('BackupList'), 'Backups') },
});

const getOne = defineRoute({
  roles: ['owner', 'auditor'],
  method: 'get',
  path: '/backups/{id}',
  tags,
  summary: 'A backup: progress (phase, bytes done), its signed manifest and every restore test',
  request: { params: IdParam },
  responses: { 200: jsonResponse(BackupDetail, 'The backup'), 404: problemResponse('No such backup') },
});

const testNow = defineRoute({
  roles: ['owner'],
  method: 'post',
  path: '/backups/{id}/restore-tests',
  tags,
  summary: 'Restore-test a backup now (starts workflow restore-test-{id})',
  request: { params: IdParam, headers: IdempotencyHeaders },
  responses: {
    202: jsonResponse(RestoreTestStarted, 'The restore test was started'),
    200: jsonResponse(RestoreTestStarted, 'The same Idempotency-Key started it before'),
    404: problemResponse('No such backup'),
    409: problemResponse('The backup is running, failed or deleted (problem code backup-<status>)'),
  },
});

const iso = (d: Date | null) => d?.toISOString() ?? null;

type BackupRow = typeof backups.$inferSelect;
const summary = (b: BackupRow): z.infer<typeof BackupSummary> => ({
  id: b.id,
  kind: b.kind,
  status: b.status,
  phase: b.phase,
  bytesDone: b.bytesDone,
  startedAt: b.startedAt.toISOString(),
  finishedAt: iso(b.finishedAt),
  snapshotAt: iso(b.snapshotAt),
  sizeBytes: b.sizeBytes,
  durationMs: b.durationMs,
  restoreTest:
    b.lastRestoreTestId && b.lastRestoreTestStatus && b.lastRestoreTestAt
      ? { id: b.lastRestoreTestId, status: b.lastRestoreTestStatus, at: b.lastRestoreTestAt.toISOString() }
      : null,
});

/**
 * Starts a restore test of a backup as `principal` (POST /v1/backups/{id}/restore-tests and the console's button):
 * 404 for no such backup, 409 while there is nothing to restore; `Idempotency-Key` honoured as for every start.
 */
export const startRestoreTest = async (
  services: Services,
  principal: Principal,
  id: string,
  idempotencyKey: string | undefined,
) => {
  const [b] = await services.database.db.select().from(backups).where(eq(backups.id, id));
  if (!b) throw ApiError.notFound(`backup ${id}`);
  if (!['completed', 'verified', 'restore-test-failed'].includes(b.status))
    throw ApiError.conflict(`backup-${b.status}`, `backup ${id} is ${b.status}: there is nothing to restore`);
  const restoreTestId = randomUUID();
  const input: RestoreTestInput = {
    restoreTestId,
    backupId: id,
    trigger: 'api',
    requestedBy: actorOf(principal).actor,
  };
  return startProcess<typeof restoreTestWorkflow>(services, principal, {
    route: `POST /v1/backups/${id}/restore-tests`,
    idempotencyKey,
    requestHash: requestHash({ backupId: id }),
    workflowType: 'restoreTest',
    id: restoreTestId,
    workflowId: restoreTestWorkflowId,
    targetType: 'restore-test',
    args: [input],
  });
};

export const backupRoutes = (services: Services) => {
  const { db } = services.database;
  return v1Resource(
    endpoint(start, async (c) => {
      const body: BackupRequest = c.req.valid('json') ?? {};
      const id = randomUUID();
      const input: BackupInput = {
        backupId: id,
        keyringBackupId: randomUUID(),
        requestedBy: actorOf(c.var.principal).actor,
        ...(body.restoreTest === false ? { restoreTest: false } : {}),
      };
      const started = await startProcess<typeof backupWorkflow>(services, c.var.principal, {
        route: 'POST /v1/backups',
        idempotencyKey: c.req.valid('header')['idempotency-key'],
        requestHash: requestHash(body),
        workflowType: 'backup',
        id,
        workflowId: backupWorkflowId,
        targetType: 'backup',
        args: [input],
      });
      return c.json({ id: started.id, workflowId: started.workflowId }, started.created ? 202 : 200);
    }),
    endpoint(list, async (c) => {
      const q = c.req.valid('query');
      const filters: SQL[] = [];
      if (q.kind) filters.push(eq(backups.kind, q.kind));
      if (q.status) filters.push(eq(backups.status, q.status));
      const rows = await db
        .select()
        .from(backups)
        .where(and(...filters))
        .orderBy(desc(backups.startedAt), desc(backups.id))
        .limit(q.limit);
      return c.json({ backups: rows.map(summary) }, 200);
    }),
    endpoint(getOne, async (c) => {
      const { id } = c.req.valid('param');
      // One snapshot for the backup, its restore tests and its keyring backup: a verdict commits to both tables at
      // once, so a reader never sees a passed test beside a backup not yet marked verified.
      const read = await db.transaction(
        async (tx) => {
          const [b] = await tx.select().from(backups).where(eq(backups.id, id));
          if (!b) return undefined;
          const tests = await tx
            .select()
            .from(restoreTests)
            .where(eq(restoreTests.backupId, id))
            .orderBy(desc(restoreTests.startedAt), desc(restoreTests.id));
          const [keyring] =
            b.kind === 'data'
              ? await tx.select({ id: backups.id }).from(backups).where(eq(backups.dataBackupId, id))
              : [];
          return { b, tests, keyring };
        },
        { isolationLevel: 'repeatable read', accessMode: 'read only' },
      );
      if (!read) {
        const running = await services.temporal.workflow
          .getHandle(backupWorkflowId(id))
          .describe()
          .catch(() => undefined);
        if (!running) throw ApiError.notFound(`backup ${id}`);
        throw new ApiError(404, 'not-yet-recorded', 'Not found', `backup ${id} is starting: retry shortly`);
      }
      const { b, tests, keyring } = read;
      return c.json(
        {
          ...summary(b),
          requestedBy: b.requestedBy,
          keyringBackupId: keyring?.id ?? null,
          dataBackupId: b.dataBackupId,
          retainUntil: iso(b.retainUntil),
          deletedAt: iso(b.deletedAt),
          error: b.error,
          manifest: b.manifest,
          workflowId: b.workflowId,
          restoreTests: tests.map((t) => ({
            id: t.id,
            status: t.status,
            trigger: t.trigger,
            requestedBy: t.requestedBy,
            phase: t.phase,
            bytesDone: t.bytesDone,
            reasons: t.reasons,
            tables: t.tables,
            rtoMs: t.rtoMs,
            rpoMs: t.rpoMs,
            startedAt: t.startedAt.toISOString(),
            finishedAt: iso(t.finishedAt),
            workflowId: t.workflowId,
            runId: t.runId,
          })),
        },
        200,
      );
    }),
    endpoint(testNow, async (c) => {
      const { id } = c.req.valid('param');
      const started = await startRestoreTest(services, c.var.principal, id, c.req.valid('header')['idempotency-key']);
      return c.json({ id: started.id, backupId: id, workflowId: started.workflowId }, started.created ? 202 : 200);
    }),
  );
};
