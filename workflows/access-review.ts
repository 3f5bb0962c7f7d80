import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  defineQuery,
  defineUpdate,
  proxyActivities,
  setHandler,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  ACCESS_REVIEW_NON_RETRYABLE,
  NOT_APPROVER,
  REVIEW_CLOSED,
  reminderTimes,
  type AccessDecider,
  type AccessDecisionRequest,
  type AccessReviewInput,
  type AccessReviewOutcome,
  type AccessReviewState,
} from '../domain/access-review';

export const io = {
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '30 seconds',
  retry: { maximumAttempts: 20, nonRetryableErrorTypes: ACCESS_REVIEW_NON_RETRYABLE },
} satisfies ActivityOptions;

const { startAccessReview, notifyAccessReviewers, recordAccessDecision, closeAccessReview } =
  proxyActivities<Activities>(io);

export const accessDecisionUpdate = defineUpdate<
  { grantId: string; decision: AccessDecisionRequest['decision']; decidedAt: string },
  [AccessDecider, AccessDecisionRequest]
>('decide');
export const accessReviewStateQuery = defineQuery<AccessReviewState>('state');

/**
 * One access review: snapshot the live grants, ask each reviewer, remind them at an interval, take keep/revoke
 * decisions as updates (an approver's, never on their own grant), and at the deadline revoke every grant nobody
 * kept. It ends early once every grant is decided.
 */
export async function accessReview(input: AccessReviewInput): Promise<AccessReviewOutcome> {
  const startedAt = Date.now();
  const deadlineAt = startedAt + input.deadlineMs;
  let state: AccessReviewState = { reviewId: input.reviewId, status: 'starting', total: 0, decided: 0, reminders: 0 };
  const decidedGrants = new Set<string>();
  setHandler(accessReviewStateQuery, () => state);

  setHandler(
    accessDecisionUpdate,
    async (by, request) => {
      try {
        const decided = await recordAccessDecision({ reviewId: input.reviewId, ...request, by });
        decidedGrants.add(request.grantId);
        state = { ...state, decided: decidedGrants.size };
        return decided;
      } catch (err) {
        // The activity's refusal (self-certification, not in the review, decided already) is the update's answer.
        if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure)
          throw ApplicationFailure.nonRetryable(err.cause.message, err.cause.type);
        throw err;
      }
    },
    {
      validator: (by, _request) => {
        if (by.role !== 'approver')
          throw ApplicationFailure.nonRetryable(`only an approver certifies access (not ${by.role})`, NOT_APPROVER);
        if (state.status !== 'open')
          throw ApplicationFailure.nonRetryable(`access review ${input.reviewId} is ${state.status}`, REVIEW_CLOSED);
      },
    },
  );

  const { total } = await startAccessReview({
    reviewId: input.reviewId,
    requestedBy: input.requestedBy,
    startedAt,
    deadlineAt,
  });
  state = { ...state, status: 'open', total };
  const allDecided = () => state.decided >= state.total;

  if (total > 0) {
    await notifyAccessReviewers({ reviewId: input.reviewId, step: 'request' });
    for (const at of reminderTimes(startedAt, deadlineAt, input.reminderEveryMs)) {
      if (await condition(allDecided, Math.max(at - Date.now(), 1))) break;
      state = { ...state, reminders: state.reminders + 1 };
      await notifyAccessReviewers({ reviewId: input.reviewId, step: `reminder-${state.reminders}` });
    }
    if (!allDecided()) await condition(allDecided, Math.max(deadlineAt - Date.now(), 1));
  }

  state = { ...state, status: 'closing' };
  // A decision already accepted finishes before the close looks at what is undecided.
  await condition(allHandlersFinished);
  const outcome = await closeAccessReview({ reviewId: input.reviewId });
  state = { ...state, status: 'closed' };
  return outcome;
}
