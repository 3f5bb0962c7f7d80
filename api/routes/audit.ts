import { z } from '@hono/zod-openapi';
import { listAudit, verifyAuditChain } from '../../activities/audit';
import { AuditRecord } from '../../domain/audit';
import type { RouteDeps } from '../app';
import { defineRoute, endpoint, jsonResponse, v1Resource } from '../auth';

const AuditQuery = z
  .object({
    targetType: z.string().min(1).max(100).optional(),
    targetId: z.string().min(1).max(200).optional(),
    action: z.string().min(1).max(100).optional(),
    after: z.coerce.number().int().min(0).optional().openapi({ description: 'Entries after this sequence number' }),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  })
  // A misspelt filter must fail, not silently widen the result.
  .strict();

const AuditPage = z
  .object({
    entries: z.array(AuditRecord.openapi('AuditRecord')),
    nextAfter: z
      .number()
      .int()
      .nullable()
      .openapi({ description: 'Pass as `after` for the next page; null at the end' }),
  })
  .openapi('AuditPage');

const AuditVerification = z
  .object({
    valid: z.boolean(),
    entries: z.number().int(),
    entriesPerSecond: z.number(),
    headHash: z.string().optional(),
    firstBrokenSeq: z.number().int().optional(),
    reason: z.string().optional(),
  })
  .openapi('AuditVerification');

const listEntries = defineRoute({
  roles: ['auditor'],
  method: 'get',
  path: '/audit',
  tags: ['audit'],
  summary: 'List audit entries in chain order, filtered, with keyset paging',
  request: { query: AuditQuery },
  responses: { 200: jsonResponse(AuditPage, 'A page of entries') },
});

const verifyChain = defineRoute({
  roles: ['auditor'],
  method: 'get',
  path: '/audit/verify',
  tags: ['audit'],
  summary: 'Recompute the hash chain and name the first broken entry',
  responses: { 200: jsonResponse(AuditVerification, 'The verification result') },
});

export const auditRoutes = ({ db }: RouteDeps) =>
  v1Resource(
    endpoint(listEntries, async (c) => {
      const query = c.req.valid('query');
      const entries = await listAudit(db.db, query);
      const nextAfter = entries.length === query.limit ? entries.at(-1)!.seq : null;
      return c.json({ entries, nextAfter }, 200);
    }),
    endpoint(verifyChain, async (c) => c.json(await verifyAuditChain(db.db), 200)),
  );
