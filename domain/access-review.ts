import { z } from 'zod';
import { Duration } from './consent';
import type { NotificationLocale } from './notification-templates';

/**
 * The periodic access review: every grant active at the start goes to its reviewer, who keeps or revokes it; the
 * reviewers are reminded at an interval; at the deadline every grant nobody kept is revoked (`not-certified`).
 * Durations are inputs: the quarterly schedule passes days, tests pass seconds.
 */

const DAY = 86_400_000;

/** The schedule's defaults: two weeks to decide, a reminder every three days. */
export const ACCESS_REVIEW_DEFAULTS = { deadlineMs: 14 * DAY, reminderEveryMs: 3 * DAY } as const;

export interface AccessReviewInput {
  reviewId: string;
  requestedBy: string;
  deadlineMs: number;
  reminderEveryMs: number;
  /** Decisions one run takes before it continues as new (default 500); history stays short for large reviews. */
  decisionsPerRun?: number;
  /** Set by continue-as-new: when the review started (its deadline counts from here) and reminders sent so far. */
  startedAt?: number;
  remindersSent?: number;
}

/** `POST /v1/access-reviews`: start one now (the quarterly schedule starts the others). */
export const AccessReviewRequest = z
  .object({ deadline: Duration.optional(), reminderEvery: Duration.optional() })
  .strict()
  .refine((r) => r.reminderEvery === undefined || r.deadline === undefined || r.reminderEvery < r.deadline, {
    error: 'must be shorter than the deadline',
    path: ['reminderEvery'],
  });
export type AccessReviewRequest = z.infer<typeof AccessReviewRequest>;

export const ACCESS_DECISIONS = ['keep', 'revoke'] as const;
export const AccessDecision = z.enum(ACCESS_DECISIONS);
export type AccessDecision = z.infer<typeof AccessDecision>;

export const AccessDecisionRequest = z
  .object({ grantId: z.uuid().transform((id) => id.toLowerCase()), decision: AccessDecision })
  .strict();
export type AccessDecisionRequest = z.infer<typeof AccessDecisionRequest>;

/** Who decides: an approver, by user ID (the API key for the audit). */
export interface AccessDecider {
  userId: string;
  role: string;
  apiKeyId?: string | null;
}

export interface AccessReviewState {
  reviewId: string;
  status: 'starting' | 'open' | 'closing' | 'closed';
  total: number;
  /** Grants still undecided, as the database last said. */
  pending: number;
  reminders: number;
}

export interface AccessReviewOutcome {
  reviewId: string;
  total: number;
  kept: number;
  revoked: number;
  notCertified: number;
  ended: number;
}

/** Refusals of a decision, as failure types (the API maps them to 403, 404, 409). */
export const NOT_APPROVER = 'NotApprover';
export const SELF_CERTIFICATION = 'SelfCertification';
export const NOT_IN_REVIEW = 'GrantNotInReview';
export const ALREADY_DECIDED = 'AlreadyDecided';
export const REVIEW_CLOSED = 'AccessReviewClosed';
export const ACCESS_REVIEW_NON_RETRYABLE = [
  NOT_APPROVER,
  SELF_CERTIFICATION,
  NOT_IN_REVIEW,
  ALREADY_DECIDED,
  REVIEW_CLOSED,
];

/** The calendar quarter a review certifies, in UTC: `2026-Q4`. */
export const reviewPeriod = (at: Date): string => `${at.getUTCFullYear()}-Q${Math.floor(at.getUTCMonth() / 3) + 1}`;

/** When the reminders fall: every interval after the start, strictly before the deadline. */
export const reminderTimes = (startedAt: number, deadlineAt: number, everyMs: number): number[] => {
  const times: number[] = [];
  for (let at = startedAt + everyMs; at < deadlineAt; at += everyMs) times.push(at);
  return times;
};

export interface AccessReviewMessage {
  reviewId: string;
  period: string;
  pending: number;
  deadlineAt: string;
  reminder: boolean;
}

/** The reviewer's request and reminders: counts and IDs only. */
export const renderAccessReviewMessage = (
  locale: NotificationLocale,
  m: AccessReviewMessage,
): { subject: string; text: string } =>
  locale === 'zh-CN'
    ? {
        subject: `${m.reminder ? '提醒：' : ''}访问权限复核 ${m.period}：${m.pending} 项待您决定`,
        text: `访问权限复核 ${m.reviewId}（${m.period}）中有 ${m.pending} 项授权待您决定保留或撤销，截止 ${m.deadlineAt}。截止时未保留的授权将被自动撤销。请通过 POST /v1/access-reviews/${m.reviewId}/decisions 作出决定。`,
      }
    : {
        subject: `${m.reminder ? 'Reminder: ' : ''}access review ${m.period}: ${m.pending} grant(s) await your decision`,
        text: `Access review ${m.reviewId} (${m.period}) has ${m.pending} grant(s) for you to keep or revoke by ${m.deadlineAt}. Every grant not kept by then is revoked automatically. Decide through POST /v1/access-reviews/${m.reviewId}/decisions.`,
      };
