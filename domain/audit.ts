import { z } from 'zod';

export const AuditRecord = z.object({
  seq: z.number().int().positive(),
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  targetType: z.string(),
  targetId: z.string(),
  workflowId: z.string().nullable(),
  runId: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
  idempotencyKey: z.string(),
  prevHash: z.string(),
  hash: z.string(),
});
export type AuditRecord = z.infer<typeof AuditRecord>;
