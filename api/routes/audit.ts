import { existsSync } from 'node:fs';
import { z } from '@hono/zod-openapi';
import { listAudit } from '../../activities/audit';
import { auditCheckpointFile } from '../../activities/audit-checkpoints';
import { verifyAuditChain } from '../../activities/audit-verify';
import { AuditRecord } from '../../domain/audit';
import type { Services } from '../../runtime/services';
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
    // Rebuilt from its shape: a domain schema made before @hono/zod-openapi loaded has no `.openapi`.
    entries: z.array(z.object(AuditRecord.shape).openapi('AuditRecord')),
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
    entries: z.number().int().openapi({ description: 'Entries that hold, from the first' }),
    entriesPerSecond: z.number(),
    headHash: z.string().openapi({ description: 'Hash of the last entry that holds' }),
    firstBrokenSeq: z.number().int().optional().openapi({
      description: 'The first entry that does not hold, or that a checkpoint shows missing or rewritten',
    }),
    reason: z.string().optional(),
    checkpoints: z.number().int().openapi({ description: 'Checkpoints read (database and checkpoint file)' }),
    anchoredSeq: z
      .number()
      .int()
      .nullable()
      .openapi({ description: 'Seq of the newest signed checkpoint the chain matches' }),
    unanchored: z.number().int().openapi({ description: 'Entries after anchoredSeq: not yet anchored' }),
    checkpointProblems: z.array(z.string()).openapi({
      description: 'Checkpoints that do not hold: signature, link, in the file but not in the database',
    }),
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
  summary: 'Recompute the hash chain, check it against the signed checkpoints, and name the first broken entry',
  responses: { 200: jsonResponse(AuditVerification, 'The verification result') },
});

/** The chain verified against the signed checkpoints, as GET /v1/audit/verify and the console's Verify answer it. */
export const verifyWithCheckpoints = ({ database: { db }, keyring, config }: Services) => {
  const checkpoints = { publicKey: keyring.signing.publicKey, file: auditCheckpointFile(config) };
  // The sink file is read when this process can see it (the process that writes checkpoints).
  const file = existsSync(checkpoints.file) ? checkpoints.file : undefined;
  return verifyAuditChain(db, { checkpoints: { ...checkpoints, file } });
};

export const auditRoutes = (services: Services) => {
  const { db } = services.database;
  return v1Resource(
    endpoint(listEntries, async (c) => {
      const query = c.req.valid('query');
      const entries = await listAudit(db, query);
      const nextAfter = entries.length === query.limit ? entries.at(-1)!.seq : null;
      return c.json({ entries, nextAfter }, 200);
    }),
    endpoint(verifyChain, async (c) => c.json(await verifyWithCheckpoints(services), 200)),
  );
};
