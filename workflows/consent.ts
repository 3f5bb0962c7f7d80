import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineUpdate,
  log,
  proxyActivities,
  setHandler,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  CONSENT_NON_RETRYABLE,
  CONSENT_STATE_QUERY,
  ConsentConflict,
  SensitiveChoiceInvalid,
  decide,
  expire,
  sensitiveAnswer,
  settleSensitive,
  withdraw,
  type ConsentActor,
  type ConsentDecision,
  type ConsentDecisionArgs,
  type ConsentInput,
  type ConsentState,
  type SensitiveDecision,
} from '../domain/consent';
import type { SignedReceipt } from '../domain/consent-receipt';

export const io = {
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: CONSENT_NON_RETRYABLE },
} satisfies ActivityOptions;

const { recordConsentRequest, sendConsentMessage, recordConsentDecision, recordConsentWithdrawal, expireConsent } =
  proxyActivities<Activities>(io);

export interface ConsentDecisionResult {
  status: 'granted' | 'denied';
  /** The separate answer for sensitive data, where the purpose touches it (PIPL Art. 29). */
  sensitive?: SensitiveDecision;
  receipt: SignedReceipt;
}

export interface ConsentWithdrawalResult {
  status: 'withdrawn';
  withdrawnAt: string;
}

export const grantUpdate = defineUpdate<ConsentDecisionResult, [ConsentDecisionArgs]>('grant');
export const denyUpdate = defineUpdate<ConsentDecisionResult, [ConsentDecisionArgs]>('deny');
export const withdrawUpdate = defineUpdate<ConsentWithdrawalResult, [ConsentActor]>('withdraw');
export const consentStateQuery = defineQuery<ConsentState>(CONSENT_STATE_QUERY);

export type ConsentOutcome = Pick<ConsentState, 'consentId' | 'round' | 'status'>;

/**
 * An update validator: the transition must be legal now. A refused one fails the update with its code (the
 * API's problem code: consent-<state>, or sensitive-choice) and leaves no event in history.
 */
const legal =
  <A extends ConsentActor>(check: (arg: A) => unknown) =>
  (arg: A) => {
    try {
      check(arg);
    } catch (err) {
      if (err instanceof ConsentConflict || err instanceof SensitiveChoiceInvalid)
        throw ApplicationFailure.nonRetryable(err.message, err.code);
      throw err;
    }
  };

/**
 * One consent round: the request, reminders every `remindEveryMs` up to `maxReminders`, expiry at the end of
 * the window; a grant lasts `validForMs` (or until withdrawn) and is then renewed by continuing as new.
 * Decisions and withdrawal are updates whose validators refuse illegal transitions, so a refusal leaves no event.
 */
export async function consent(input: ConsentInput): Promise<ConsentOutcome> {
  const requestedAt = Date.now();
  let state: ConsentState = {
    consentId: input.consentId,
    round: input.round,
    status: 'requested',
    reminders: 0,
    respondBy: requestedAt + input.respondWithinMs,
  };
  setHandler(consentStateQuery, () => state);

  // A decision can arrive before the request is recorded: its record waits for the request's (and a withdrawal
  // for the decision's record).
  let recorded = false;
  let deciding = false;
  const decideWith = (decision: ConsentDecision) => async (by: ConsentDecisionArgs) => {
    state = decide(state, decision, Date.now(), input.validForMs);
    deciding = true;
    try {
      await condition(() => recorded);
      // The validator checked the answer once the purpose was known; one that came earlier is settled safely.
      const sensitive = settleSensitive(state.sensitive, decision, by.sensitive);
      if (state.status !== 'withdrawn') state = { ...state, sensitiveDecision: sensitive };
      const { sensitive: _choice, ...actor } = by;
      const receipt = await recordConsentDecision({
        consentId: input.consentId,
        round: input.round,
        decision,
        decidedAt: state.decidedAt!,
        validUntil: state.validUntil,
        sensitive,
        by: actor,
      });
      const status = decision === 'grant' ? ('granted' as const) : ('denied' as const);
      return { status, ...(sensitive ? { sensitive } : {}), receipt };
    } finally {
      deciding = false;
    }
  };
  const validateDecision = (decision: ConsentDecision) =>
    legal((by: ConsentDecisionArgs) => {
      decide(state, decision, Date.now(), input.validForMs);
      sensitiveAnswer(state.sensitive, decision, by.sensitive);
    });
  setHandler(grantUpdate, decideWith('grant'), { validator: validateDecision('grant') });
  setHandler(denyUpdate, decideWith('deny'), { validator: validateDecision('deny') });
  setHandler(
    withdrawUpdate,
    async (by) => {
      state = withdraw(state, Date.now());
      await condition(() => !deciding);
      await recordConsentWithdrawal({
        consentId: input.consentId,
        round: input.round,
        withdrawnAt: state.withdrawnAt!,
        by,
      });
      return { status: 'withdrawn' as const, withdrawnAt: new Date(state.withdrawnAt!).toISOString() };
    },
    { validator: legal(() => withdraw(state, Date.now())) },
  );

  const requested = await recordConsentRequest({
    consentId: input.consentId,
    subjectId: input.subjectId,
    noticeId: input.noticeId,
    purpose: input.purpose,
    channel: input.channel,
    requestedBy: input.requestedBy,
    round: input.round,
    requestedAt,
    respondBy: state.respondBy,
  });
  state = { ...state, sensitive: requested.sensitive };
  recorded = true;
  const send = async (template: 'consent-request' | 'consent-reminder', step: string) => {
    try {
      await sendConsentMessage({
        consentId: input.consentId,
        subjectId: input.subjectId,
        noticeId: input.noticeId,
        round: input.round,
        template,
        step,
        expiresAt: state.respondBy,
      });
    } catch (err) {
      // The request stays open: an owner can still record the answer on the subject's behalf.
      log.warn('a consent message could not be sent', {
        step,
        failureType: (err as { cause?: { type?: string } }).cause?.type,
      });
    }
  };
  if (state.status === 'requested') await send('consent-request', 'request');

  while (state.status === 'requested') {
    const left = state.respondBy - Date.now();
    if (left <= 0) break;
    const remind = state.reminders < input.maxReminders && input.remindEveryMs < left;
    if (await condition(() => state.status !== 'requested', remind ? input.remindEveryMs : left)) break;
    if (remind && state.status === 'requested') {
      state = { ...state, reminders: state.reminders + 1 };
      await send('consent-reminder', `reminder-${state.reminders}`);
    }
  }
  if (state.status === 'requested') {
    state = expire(state);
    await expireConsent({ consentId: input.consentId, round: input.round, at: Date.now() });
  }
  if (state.status === 'granted') {
    const left = state.validUntil! - Date.now();
    const withdrawn = left > 0 ? await condition(() => state.status === 'withdrawn', left) : false;
    if (!withdrawn) {
      await condition(allHandlersFinished);
      return await continueAsNew<typeof consent>({ ...input, round: input.round + 1 });
    }
  }
  await condition(allHandlersFinished);
  return { consentId: state.consentId, round: state.round, status: state.status };
}
