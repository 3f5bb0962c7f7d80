import { z } from 'zod';

/**
 * One retention sweep (`retention-sweep-{id}`, daily on a Temporal Schedule): subjects past `retentionUntil` and field
 * values past their anchored retention, not held, not destroyed, become ONE destruction request (`destructionId`),
 * approved like any other unless the operator enabled automatic approval. Windows default to the configuration.
 */
export const RetentionSweepInput = z
  .object({
    sweepId: z.uuid(),
    destructionId: z.uuid(),
    requestedBy: z.string().min(1),
    approvalWindowMs: z.number().int().min(1000).optional(),
    graceMs: z.number().int().min(0).optional(),
    autoApprove: z.boolean().optional(),
  })
  .strict();
export type RetentionSweepInput = z.infer<typeof RetentionSweepInput>;

export interface RetentionSweepResult {
  sweepId: string;
  matched: number;
  held: number;
  targeted: number;
  /** The destruction request the sweep opened; null when nothing was due. */
  destructionId: string | null;
  autoApproved: boolean;
}
