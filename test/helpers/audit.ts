import type { AuditAppend } from '../../activities/audit';

/** A distinct audit entry per `n`, with its own idempotency key. */
export const testAuditEntry = (n: number): AuditAppend => ({
  actor: 'user:test',
  action: 'test.event',
  targetType: 'test',
  targetId: `t-${n}`,
  details: { n },
  idempotencyKey: `test:${n}`,
});
