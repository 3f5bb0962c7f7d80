import { z } from 'zod';
import { Duration } from './consent';
import { FieldName, Purpose } from './catalog';
import { DomainError } from './errors';
import { StorableText } from './text';

const SubjectIds = z
  .array(z.uuid().transform((id) => id.toLowerCase()))
  .min(1)
  .max(100_000);

/**
 * What a destruction covers: named subjects, every subject past `retentionUntil`, every subject whose consent for
 * `purpose` was withdrawn, or named fields (of named subjects, or of every subject whose anchored retention of
 * that field has passed) while the subjects stay.
 */
export const DestructionScope = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('subjects'), subjectIds: SubjectIds }).strict(),
  z.object({ kind: z.literal('retentionExpired') }).strict(),
  z.object({ kind: z.literal('consentWithdrawn'), purpose: Purpose }).strict(),
  z
    .object({ kind: z.literal('fields'), fields: z.array(FieldName).min(1).max(64), subjectIds: SubjectIds.optional() })
    .strict(),
]);
export type DestructionScope = z.infer<typeof DestructionScope>;

export const DestructionOrigin = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('request'), requestId: z.uuid() }).strict(),
  z.object({ kind: z.literal('consent'), consentId: z.uuid() }).strict(),
  z.object({ kind: z.literal('sweep'), sweepId: z.string().min(1).max(200) }).strict(),
]);
export type DestructionOrigin = z.infer<typeof DestructionOrigin>;

/** `POST /v1/destructions`: windows default to the deployment's configuration. */
export const DestructionRequest = z
  .object({
    scope: DestructionScope,
    reason: StorableText(3, 2000),
    approvalWindow: Duration.optional(),
    graceWindow: Duration.optional(),
  })
  .strict();
export type DestructionRequest = z.infer<typeof DestructionRequest>;

/**
 * The workflow's input (IDs, codes, counts and durations): a route, the retention sweep and the data-subject-request
 * workflow (as a child) start `destruction-{id}` the same way; its first activity persists the record.
 */
export const DestructionInput = z
  .object({
    destructionId: z.uuid(),
    scope: DestructionScope,
    /** A person's reason, stored by the API in process_texts before the start: its ID only, never the text. */
    reasonTextId: z.uuid().optional(),
    /** A system starter's fixed reason (codes and IDs: the sweep, a data-subject request, a consent withdrawal). */
    reason: z.string().min(1).max(2000).optional(),
    /** `user:<id>`, `system`, `schedule:<name>` or `request:<id>`. */
    requestedBy: z.string().min(1),
    origin: DestructionOrigin.optional(),
    approvalWindowMs: z.number().int().min(1000),
    graceMs: z.number().int().min(0),
    /** Sweeps only, when the operator enabled it: no approvals, recorded on the certificate. */
    autoApprove: z.boolean().optional(),
    /** Subjects per shredding transaction. */
    batchSize: z.number().int().min(1).max(5000).optional(),
  })
  .strict();
export type DestructionInput = z.infer<typeof DestructionInput>;

export const DESTRUCTION_STATUSES = [
  'awaiting-approval',
  'grace',
  'destroying',
  'verifying',
  'completed',
  'refused',
  'rejected',
  'expired',
  'cancelled',
  'failed',
] as const;
export type DestructionStatus = (typeof DESTRUCTION_STATUSES)[number];
export const FINAL_STATUSES: readonly DestructionStatus[] = [
  'completed',
  'refused',
  'rejected',
  'expired',
  'cancelled',
  'failed',
];

/** The workflow's result: a parent learns the outcome and the certificate from it. */
export interface DestructionOutcome {
  destructionId: string;
  status: DestructionStatus;
  certificateId?: string;
  subjectsDestroyed: number;
}

export const ApprovalRequest = z
  .object({ decision: z.enum(['approve', 'reject']), comment: StorableText(1, 2000) })
  .strict();
export type ApprovalRequest = z.infer<typeof ApprovalRequest>;
export const CancelRequest = z.object({ reason: StorableText(3, 2000) }).strict();

/**
 * What the approval update carries: the decision and the ID of the comment the API stored (`comment` is the text
 * itself in histories from before texts were stored apart).
 */
export interface ApprovalDecision {
  decision: 'approve' | 'reject';
  commentTextId?: string;
  comment?: string;
}
/** What the cancel update carries: the stored reason's ID (`reason` itself in older histories). */
export interface CancelDecision {
  reasonTextId?: string;
  reason?: string;
}

export interface DestructionActor {
  userId: string;
  actor: string;
  apiKeyId?: string;
  role: string;
}

export interface Approval {
  userId: string;
  actor: string;
  decision: 'approve' | 'reject';
  at: number;
  commentTextId?: string;
  /** The comment itself, in histories from before texts were stored apart. */
  comment?: string;
}

export interface DestructionState {
  destructionId: string;
  status: DestructionStatus;
  approvals: Approval[];
  cancelled: boolean;
}

export const APPROVALS_REQUIRED = 2;
export const DESTRUCTION_CONFLICT_PREFIX = 'destruction-';
export const NOT_APPROVER = 'DestructionNotApprover';
export const REQUESTER_CANNOT_APPROVE = 'DestructionRequesterCannotApprove';
export const DESTRUCTION_NON_RETRYABLE = ['DestructionNotFound', 'DestructionVerificationFailed'];

export class DestructionConflict extends DomainError {
  override name = 'DestructionConflict';
  constructor(code: string, message: string) {
    super('conflict', code, message);
  }
}

/**
 * Four-eyes: only users of role `approver` (an owner requests, an approver approves: one role each), never the
 * requester, each counted once. Throws the refusal; returns whether the decision adds anything.
 */
export const checkApproval = (
  s: DestructionState,
  requestedBy: string,
  by: DestructionActor,
  decision: 'approve' | 'reject',
) => {
  if (by.role !== 'approver')
    throw new DestructionConflict(
      NOT_APPROVER,
      `only an approver can decide a destruction (${by.actor} is ${by.role})`,
    );
  if (by.actor === requestedBy || requestedBy === `user:${by.userId}`)
    throw new DestructionConflict(
      REQUESTER_CANNOT_APPROVE,
      `${by.actor} requested destruction ${s.destructionId}: another approver must decide`,
    );
  if (s.status !== 'awaiting-approval')
    throw new DestructionConflict(
      `${DESTRUCTION_CONFLICT_PREFIX}${s.status}`,
      `destruction ${s.destructionId} is ${s.status}: it cannot be ${decision === 'approve' ? 'approved' : 'rejected'}`,
    );
  const earlier = s.approvals.find((a) => a.userId === by.userId);
  if (earlier && earlier.decision !== decision)
    throw new DestructionConflict(
      `${DESTRUCTION_CONFLICT_PREFIX}decided`,
      `${by.actor} already decided ${earlier.decision} on destruction ${s.destructionId}`,
    );
  return earlier === undefined;
};

export const approvalsOf = (s: DestructionState) =>
  new Set(s.approvals.filter((a) => a.decision === 'approve').map((a) => a.userId)).size;
export const isRejected = (s: DestructionState) => s.approvals.some((a) => a.decision === 'reject');

export const checkCancel = (s: DestructionState) => {
  if (s.status !== 'awaiting-approval' && s.status !== 'grace')
    throw new DestructionConflict(
      `${DESTRUCTION_CONFLICT_PREFIX}${s.status}`,
      `destruction ${s.destructionId} is ${s.status}: only a request awaiting approval or in its grace window can be cancelled`,
    );
};
