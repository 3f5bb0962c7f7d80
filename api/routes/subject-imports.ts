import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { z } from '@hono/zod-openapi';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { asc, eq } from 'drizzle-orm';
import { appendAudit } from '../../activities/audit';
import { removeStagedFile, stageImportFile, StagingError } from '../../activities/import-staging';
import type { Database } from '../../db/client';
import { importRejects, subjectImports } from '../../db/schema';
import { importWorkflowId } from '../../domain/ids';
import { ImportMode, ImportStatus, RejectReason, type SubjectImportInput } from '../../domain/subject-import';
import type { Services } from '../../runtime/services';
import type { subjectImport } from '../../workflows/subject-import';
import { actorOf, defineRoute, endpoint, jsonResponse, v1Resource } from '../auth';
import { ApiError, problemResponse } from '../errors';
import { IdParam } from '../params';
import { IdempotencyHeaders, requestHash, startProcess } from '../processes';

const NDJSON_TYPES = new Set(['application/x-ndjson', 'application/ndjson', 'application/jsonl']);
const FIRST_REJECTS = 1000;

const StartQuery = z
  .object({ mode: ImportMode.default('insert').openapi({ description: 'upsert updates subjects that exist' }) })
  .strict();

const ImportStarted = z.object({ id: z.uuid() }).openapi('SubjectImportStarted');
const ImportReject = z
  .object({ line: z.number().int(), reason: RejectReason, message: z.string() })
  .openapi('SubjectImportReject');
const SubjectImport = z
  .object({
    id: z.uuid(),
    status: ImportStatus,
    mode: ImportMode.nullable(),
    total: z.number().int().openapi({ description: 'Non-blank lines in the file' }),
    processed: z.number().int(),
    imported: z.number().int(),
    updated: z.number().int(),
    rejected: z.number().int(),
    duplicates: z.number().int(),
    ratePerSecond: z.number(),
    unclassifiedFields: z.array(z.string()),
    error: z.string().nullable(),
    startedAt: z.iso.datetime().nullable(),
    finishedAt: z.iso.datetime().nullable(),
    rejects: z.array(ImportReject).openapi({ description: `The first ${FIRST_REJECTS} rejected lines` }),
  })
  .openapi('SubjectImport');

const startImport = defineRoute({
  roles: ['owner'],
  streamedBody: true,
  method: 'post',
  path: '/subject-imports',
  tags: ['subject-imports'],
  summary: 'Import subjects from an NDJSON body (streamed to staging, one subject per line)',
  request: {
    query: StartQuery,
    headers: IdempotencyHeaders,
    body: {
      required: true,
      content: { 'application/x-ndjson': { schema: z.string().openapi({ format: 'binary' }) } },
    },
  },
  responses: {
    200: jsonResponse(ImportStarted, 'An earlier request with this Idempotency-Key started the import'),
    202: jsonResponse(ImportStarted, 'The import is running'),
    409: problemResponse('The Idempotency-Key was used with a different request'),
    413: problemResponse('The file is larger than the import limit'),
    415: problemResponse('The body is not NDJSON'),
  },
});

const getImport = defineRoute({
  roles: ['owner'],
  method: 'get',
  path: '/subject-imports/{id}',
  tags: ['subject-imports'],
  summary: 'Progress, counts and the first rejects of an import',
  request: { params: IdParam },
  responses: { 200: jsonResponse(SubjectImport, 'The import'), 404: problemResponse('No such import') },
});

const cancelImport = defineRoute({
  roles: ['owner'],
  method: 'post',
  path: '/subject-imports/{id}/cancel',
  tags: ['subject-imports'],
  summary: 'Cancel a running import at its next batch boundary',
  request: { params: IdParam },
  responses: {
    202: jsonResponse(ImportStarted, 'Cancellation requested'),
    404: problemResponse('No such import'),
    409: problemResponse('The import has finished'),
  },
});

const CLOSED: Record<string, z.infer<typeof ImportStatus> | undefined> = {
  COMPLETED: 'completed',
  FAILED: 'failed',
  TERMINATED: 'failed',
  TIMED_OUT: 'failed',
  CANCELLED: 'cancelled',
};

/** The workflow's status when it closed without recording one (terminated, or failed before its last step). */
const workflowStatus = async (temporal: Client, id: string) => {
  try {
    const { name } = (await temporal.workflow.getHandle(importWorkflowId(id)).describe()).status;
    // Closed without the workflow recording why: say so now, as the staging sweep will record it.
    const error = name === 'TERMINATED' || name === 'TIMED_OUT' ? name.toLowerCase() : undefined;
    return { found: true as const, status: CLOSED[name] ?? ('running' as const), error };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return { found: false as const };
    throw err;
  }
};

const readImport = async (database: Database, temporal: Client, id: string) => {
  const [row] = await database.db.select().from(subjectImports).where(eq(subjectImports.id, id));
  const live = !row || row.status === 'running' ? await workflowStatus(temporal, id) : undefined;
  if (!row && !live?.found) return undefined;
  const rejects = row
    ? await database.db
        .select({ line: importRejects.line, reason: importRejects.reason, message: importRejects.message })
        .from(importRejects)
        .where(eq(importRejects.importId, id))
        .orderBy(asc(importRejects.line))
        .limit(FIRST_REJECTS)
    : [];
  const end = row?.finishedAt ?? new Date();
  const seconds = row ? Math.max((end.getTime() - row.startedAt.getTime()) / 1000, 0.001) : 1;
  return {
    id,
    status: live?.found ? live.status : (row?.status ?? 'running'),
    mode: row?.mode ?? null,
    total: row?.totalLines ?? 0,
    processed: row?.processedLines ?? 0,
    imported: row?.imported ?? 0,
    updated: row?.updated ?? 0,
    rejected: row?.rejected ?? 0,
    duplicates: row?.duplicates ?? 0,
    ratePerSecond: Math.round((row?.processedLines ?? 0) / seconds),
    unclassifiedFields: row?.unclassifiedFields ?? [],
    error: row?.error ?? (live?.found ? live.error : undefined) ?? null,
    startedAt: row?.startedAt.toISOString() ?? null,
    finishedAt: row?.finishedAt?.toISOString() ?? null,
    rejects: rejects.map((r) => ({ ...r, reason: r.reason as z.infer<typeof RejectReason> })),
  };
};

export const subjectImportRoutes = (services: Services) => {
  const { config, database, temporal, stagingDir } = services;
  const maxBytes = config.CUSTODIAN_IMPORT_MAX_BYTES;
  return v1Resource(
    endpoint(startImport, async (c) => {
      const mediaType = c.req.header('content-type')?.split(';')[0]?.trim().toLowerCase();
      if (!mediaType || !NDJSON_TYPES.has(mediaType)) {
        throw new ApiError(415, 'unsupported-media-type', 'Unsupported media type', 'send application/x-ndjson');
      }
      const body = c.req.raw.body;
      if (!body) throw ApiError.badRequest('the import file is empty');
      const id = randomUUID();
      let staged;
      try {
        staged = await stageImportFile(stagingDir, id, Readable.fromWeb(body as NodeReadableStream<Uint8Array>), {
          maxBytes,
        });
      } catch (err) {
        if (!(err instanceof StagingError)) throw err;
        if (err.code === 'too-large') throw ApiError.payloadTooLarge(maxBytes);
        throw ApiError.badRequest(err.message);
      }
      const { mode } = c.req.valid('query');
      const input: SubjectImportInput = {
        importId: id,
        mode,
        requestedBy: actorOf(c.var.principal).actor,
        totalLines: staged.lines,
        stagedBytes: staged.bytes,
      };
      // A refused request removes its upload; an ambiguous start keeps it (the workflow may have started; the sweep decides).
      const started = await startProcess<typeof subjectImport>(services, c.var.principal, {
        route: 'POST /v1/subject-imports',
        idempotencyKey: c.req.valid('header')['idempotency-key'],
        requestHash: requestHash({ mode, sha256: staged.sha256 }),
        workflowType: 'subjectImport',
        id,
        workflowId: importWorkflowId,
        targetType: 'subject-import',
        args: [input],
      }).catch(async (err: unknown) => {
        if (err instanceof ApiError) await removeStagedFile(stagingDir, id);
        throw err;
      });
      if (started.created) return c.json({ id }, 202);
      await removeStagedFile(stagingDir, id);
      return c.json({ id: started.id }, 200);
    }),
    endpoint(getImport, async (c) => {
      const { id } = c.req.valid('param');
      const found = await readImport(database, temporal, id);
      if (!found) throw ApiError.notFound(`subject import ${id}`);
      return c.json(found, 200);
    }),
    endpoint(cancelImport, async (c) => {
      const { id } = c.req.valid('param');
      const found = await readImport(database, temporal, id);
      if (!found) throw ApiError.notFound(`subject import ${id}`);
      const finished = () =>
        ApiError.conflict('import-finished', `the import is ${found.status === 'running' ? 'finished' : found.status}`);
      if (found.status !== 'running') throw finished();
      try {
        await temporal.workflow.getHandle(importWorkflowId(id)).cancel();
      } catch (err) {
        // It completed between the read and the cancel.
        if (err instanceof WorkflowNotFoundError) throw finished();
        throw err;
      }
      // The workflow records the outcome as the system; who asked for it is recorded here, once it was asked.
      await appendAudit(database.db, {
        ...actorOf(c.var.principal),
        action: 'subject-import.cancel-requested',
        targetType: 'subject-import',
        targetId: id,
        workflowId: importWorkflowId(id),
        idempotencyKey: `${importWorkflowId(id)}:cancel-requested`,
      });
      return c.json({ id }, 202);
    }),
  );
};
