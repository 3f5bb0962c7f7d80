import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineUpdate,
  proxyActivities,
  setHandler,
  workflowInfo,
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
 * kept. It ends early once every grant is decided, and continues as new after `decisionsPerRun` decisions (the
 * review's records are in the database; the next run reads its counts back).
 */
export async function accessReview(input: AccessReviewInput): Promise<AccessReviewOutcome> {
  const startedAt = input.startedAt ?? Date.now();
  const deadlineAt = startedAt + input.deadlineMs;
  const decisionsPerRun = input.decisionsPerRun ?? 500;
  let decisionsThisRun = 0;
  let state: AccessReviewState = {
    reviewId: input.reviewId,
    status: 'starting',
    total: 0,
    pending: 0,
    reminders: input.remindersSent ?? 0,
  };
  setHandler(accessReviewStateQuery, () => state);

  setHandler(
    accessDecisionUpdate,
    async (by, request) => {
      try {
        const { pending, ...decided } = await recordAccessDecision({ reviewId: input.reviewId, ...request, by });
        decisionsThisRun++;
        // Decisions finish in any order; the number undecided only ever falls.
        state = { ...state, pending: Math.min(state.pending, pending) };
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

  const { total, pending } = await startAccessReview({
    reviewId: input.reviewId,
    requestedBy: input.requestedBy,
    startedAt,
    deadlineAt,
  });
  state = { ...state, status: 'open', total, pending };
  const allDecided = () => state.pending === 0;
  const continueSuggested = () => decisionsThisRun >= decisionsPerRun || workflowInfo().continueAsNewSuggested;

  if (total > 0 && input.startedAt === undefined)
    await notifyAccessReviewers({ reviewId: input.reviewId, step: 'request' });
  const reminders = reminderTimes(startedAt, deadlineAt, input.reminderEveryMs);
  while (!allDecided() && Date.now() < deadlineAt) {
    if (continueSuggested()) {
      await condition(allHandlersFinished);
      return await continueAsNew<typeof accessReview>({ ...input, startedAt, remindersSent: state.reminders });
    }
    const next = reminders[state.reminders];
    const wakeAt = next === undefined ? deadlineAt : Math.min(next, deadlineAt);
    await condition(() => allDecided() || continueSuggested(), Math.max(wakeAt - Date.now(), 1));
    if (next === undefined || Date.now() < next || allDecided() || Date.now() >= deadlineAt) continue;
    // A worker away past several reminder times sends the latest one only.
    let sent = state.reminders + 1;
    while (reminders[sent] !== undefined && reminders[sent]! <= Date.now()) sent++;
    state = { ...state, reminders: sent };
    await notifyAccessReviewers({ reviewId: input.reviewId, step: `reminder-${sent}` });
  }

  state = { ...state, status: 'closing' };
  // A decision already accepted finishes before the close looks at what is undecided.
  await condition(allHandlersFinished);
  const outcome = await closeAccessReview({ reviewId: input.reviewId });
  state = { ...state, status: 'closed' };
  return outcome;
}
