import {
  ApplicationFailure,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  defineQuery,
  defineUpdate,
  log,
  proxyActivities,
  setHandler,
  startChild,
  uuid4,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RequestPatch } from '../activities/requests';
import { destructionWorkflowId } from '../domain/ids';
import {
  NOT_OWNER,
  REASON_REQUIRED,
  REQUEST_NON_RETRYABLE,
  REQUEST_STATE_QUERY,
  RequestConflict,
  addNote,
  assign,
  close,
  dueAt,
  extend,
  isClosed,
  pause,
  pendingMarks,
  resume,
  verify,
  type FulfilArgs,
  type FulfilResult,
  type RequestActor,
  type RequestInput,
  type RequestState,
} from '../domain/request-state';
import type { RequestStaffMark, SubjectMessageKind } from '../domain/request-messages';

export const io = {
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 20, nonRetryableErrorTypes: REQUEST_NON_RETRYABLE },
} satisfies ActivityOptions;

const { openRequest, recordRequestEvent, fulfilRequest, messageRequestSubject, messageRequestStaff } =
  proxyActivities<Activities>(io);

/** What an update answers: the status, when, the due time and the time left (frozen while paused). */
export interface Recorded {
  status: RequestState['status'];
  at: number;
  dueAt: number;
  timeLeftMs: number;
}

export const requestStateQuery = defineQuery<RequestState>(REQUEST_STATE_QUERY);
export const verifyUpdate = defineUpdate<Recorded, [RequestActor, { method: string; referenceTextId?: string }]>(
  'verify',
);
export const assignUpdate = defineUpdate<Recorded, [RequestActor, { assignee: string }]>('assign');
export const noteUpdate = defineUpdate<Recorded, [RequestActor, { textId: string }]>('note');
export const extendUpdate = defineUpdate<Recorded, [RequestActor, { byMs: number; reasonTextId?: string }]>('extend');
export const pauseUpdate = defineUpdate<Recorded, [RequestActor, { reasonTextId: string }]>('pause');
export const resumeUpdate = defineUpdate<Recorded, [RequestActor]>('resume');
export const fulfilUpdate = defineUpdate<FulfilResult, [RequestActor, FulfilArgs]>('fulfil');
export const refuseUpdate = defineUpdate<Recorded, [RequestActor, { reasonTextId?: string }]>('refuse');

/** Only owners work a request; the subject's verification link is the one thing a page may do. */
const validated =
  <A extends unknown[]>(check: (by: RequestActor, ...args: A) => unknown, pageMayDo = false) =>
  (by: RequestActor, ...args: A) => {
    if (by.role !== 'owner' && !(pageMayDo && by.method === 'page-link'))
      throw ApplicationFailure.nonRetryable(`only an owner can work a request (${by.actor} is ${by.role})`, NOT_OWNER);
    try {
      check(by, ...args);
    } catch (err) {
      if (err instanceof RequestConflict) throw ApplicationFailure.nonRetryable(err.message, err.code);
      throw err;
    }
  };

const who = (by: RequestActor) => ({ actor: by.actor, apiKeyId: by.apiKeyId ?? null });

const reasonRequired = (what: string): never => {
  throw ApplicationFailure.nonRetryable(`${what} needs a reason (PIPL Art. 50; GDPR Art. 12(3)-(4))`, REASON_REQUIRED);
};

/**
 * One data-subject request: it waits for the requester's identity to be verified (an owner's record or the
 * subject's link) until the verification window runs out, is worked by updates, and closes by `fulfil` or
 * `refuse`. The legal clock runs from receipt beside it (stopped while paused for the subject), with reminders at
 * 50/75/90 % and the overdue escalation; each fires once, because the marks fired are part of the state.
 */
export async function request(input: RequestInput): Promise<{ requestId: string; status: string; late: boolean }> {
  const { clock } = input;
  let state: RequestState = {
    requestId: input.requestId,
    type: input.type,
    status: input.verification ? 'open' : 'verifying',
    receivedAt: clock.receivedAt,
    windowMs: clock.windowMs,
    extensionMs: 0,
    pausedMs: 0,
    fired: [],
    late: false,
    ...(input.verification ? { verifiedAt: Date.now() } : {}),
    events: 0,
  };
  /** Bumped on every change the clock must look at again (pause, resume, extension, close). */
  let clockVersion = 0;
  /** Messages the subject is owed, sent in order by the main loop (so an update answers without waiting on mail). */
  const subjectMessages: { kind: SubjectMessageKind; step: string; exportId?: string }[] = [];
  setHandler(requestStateQuery, () => state);

  const clockPatch = (): RequestPatch => ({
    dueAt: dueAt(state, Date.now()),
    clock: {
      ...clock,
      extensionMs: state.extensionMs,
      pausedMs: state.pausedMs,
      ...(state.pausedSince === undefined ? {} : { pausedSince: state.pausedSince }),
      fired: state.fired,
    },
  });
  let opened = false;
  const record = async (
    type: string,
    by: { actor: string; apiKeyId?: string | null },
    o: { details?: Record<string, unknown>; textId?: string; patch?: RequestPatch; step?: string } = {},
  ) => {
    const step = o.step ?? `event-${++state.events}`;
    const at = Date.now();
    await condition(() => opened);
    await recordRequestEvent({
      requestId: input.requestId,
      step,
      type,
      at,
      by,
      ...(o.details ? { details: o.details } : {}),
      ...(o.textId ? { textId: o.textId } : {}),
      ...(o.patch ? { patch: o.patch } : {}),
    });
  };
  const answer = (): Recorded => {
    const now = Date.now();
    return { status: state.status, at: now, dueAt: dueAt(state, now), timeLeftMs: dueAt(state, now) - now };
  };

  setHandler(
    verifyUpdate,
    async (by, { method, referenceTextId }) => {
      state = verify(state, Date.now());
      clockVersion++;
      await record('verified', who(by), {
        details: { method, via: by.method },
        ...(referenceTextId ? { textId: referenceTextId } : {}),
        patch: {
          status: 'open',
          verification: {
            method,
            by: by.actor,
            at: new Date(state.verifiedAt!).toISOString(),
            referenceTextId: referenceTextId ?? null,
          },
        },
      });
      return answer();
    },
    { validator: validated<[{ method: string; referenceTextId?: string }]>(() => verify(state, Date.now()), true) },
  );
  setHandler(
    assignUpdate,
    async (by, { assignee }) => {
      state = assign(state, `user:${assignee}`);
      await record('assigned', who(by), {
        details: { assignee: state.assignee },
        patch: { assignee: state.assignee! },
      });
      return answer();
    },
    { validator: validated<[{ assignee: string }]>(() => assign(state, 'user:check')) },
  );
  setHandler(
    noteUpdate,
    async (by, { textId }) => {
      state = addNote(state);
      await record('note', who(by), { textId });
      return answer();
    },
    { validator: validated<[{ textId: string }]>(() => addNote(state)) },
  );
  setHandler(
    extendUpdate,
    async (by, { byMs, reasonTextId }) => {
      const firstPeriodEnds = dueAt(state, Date.now());
      state = extend(state, clock, byMs, Date.now());
      clockVersion++;
      await record('extended', who(by), {
        details: { byMs, firstPeriodEnds: new Date(firstPeriodEnds).toISOString(), source: clock.source },
        textId: reasonTextId!,
        patch: clockPatch(),
      });
      // GDPR Art. 12(3): the subject is told of the extension, with the reasons, within the first month.
      subjectMessages.push({ kind: 'extended', step: 'subject-extended' });
      return answer();
    },
    {
      validator: validated<[{ byMs: number; reasonTextId?: string }]>((_by, { byMs, reasonTextId }) => {
        extend(state, clock, byMs, Date.now());
        if (!reasonTextId) reasonRequired('an extension');
      }),
    },
  );
  setHandler(
    pauseUpdate,
    async (by, { reasonTextId }) => {
      state = pause(state, Date.now());
      clockVersion++;
      await record('paused', who(by), { textId: reasonTextId, patch: { status: 'paused', ...clockPatch() } });
      return answer();
    },
    { validator: validated<[{ reasonTextId: string }]>(() => pause(state, Date.now())) },
  );
  setHandler(
    resumeUpdate,
    async (by) => {
      const since = state.pausedSince!;
      state = resume(state, Date.now());
      clockVersion++;
      await record('resumed', who(by), {
        details: { pausedForMs: Date.now() - since },
        patch: { status: 'open', ...clockPatch() },
      });
      return answer();
    },
    { validator: validated<[]>(() => resume(state, Date.now())) },
  );
  setHandler(
    refuseUpdate,
    async (by, { reasonTextId }) => {
      state = close(state, 'refused', Date.now(), 'refused');
      clockVersion++;
      // Queued with the change of state: the message loop ends once the request is closed and nothing is queued.
      subjectMessages.push({ kind: 'refused', step: 'subject-closed' });
      await record('refused', who(by), {
        textId: reasonTextId!,
        patch: { status: 'refused', outcome: 'refused', closedAt: state.closedAt!, ...clockPatch() },
      });
      return answer();
    },
    {
      validator: validated<[{ reasonTextId?: string }]>((_by, { reasonTextId }) => {
        close(state, 'refused', Date.now(), 'refused');
        if (!reasonTextId) reasonRequired('a refusal');
      }),
    },
  );
  setHandler(
    fulfilUpdate,
    async (by, args) => {
      // Closed first so that a second fulfil is refused while this one runs; the row closes with the fulfilment.
      const before = state;
      state = close(state, 'fulfilled', Date.now(), 'fulfilling');
      clockVersion++;
      await condition(() => opened);
      let result: FulfilResult;
      try {
        result = await fulfilRequest({
          requestId: input.requestId,
          step: 'fulfilled',
          at: state.closedAt!,
          by: who(by),
          args,
          linkTtlMs: input.linkTtlMs,
        });
      } catch (err) {
        // Nothing was closed: the request stays as it was (the activity's transaction wrote nothing).
        state = before;
        clockVersion++;
        const cause = err instanceof ApplicationFailure ? err : (err as { cause?: unknown }).cause;
        if (cause instanceof ApplicationFailure)
          throw ApplicationFailure.nonRetryable(cause.message, cause.type ?? 'FulfilFailed');
        throw ApplicationFailure.nonRetryable(
          `the request could not be fulfilled: ${(err as Error).message}`,
          'FulfilFailed',
        );
      }
      if (result.outcome === 'destruction-required') {
        const destructionId = uuid4();
        await startChild('destruction', {
          workflowId: destructionWorkflowId(destructionId),
          parentClosePolicy: ParentClosePolicy.ABANDON,
          args: [
            {
              destructionId,
              scope: { kind: 'subjects', subjectIds: [input.subjectId] },
              reason: `erasure requested by the subject (request ${input.requestId})`,
              requestedBy: `request:${input.requestId}`,
              origin: { kind: 'request', requestId: input.requestId },
              approvalWindowMs: input.destruction.approvalWindowMs,
              graceMs: input.destruction.graceMs,
            },
          ],
        });
        result = { status: 'fulfilled', at: state.closedAt!, outcome: 'destruction-opened', destructionId };
        await record('fulfilled', who(by), {
          step: 'fulfilled-destruction',
          details: { outcome: result.outcome, destructionId, result },
          patch: { status: 'fulfilled', outcome: result.outcome, closedAt: state.closedAt!, destructionId },
        });
      }
      subjectMessages.push(
        args.delivery === 'link' && result.exportId
          ? { kind: 'export-ready', step: 'subject-closed', exportId: result.exportId }
          : { kind: 'answered', step: 'subject-closed' },
      );
      state = { ...state, outcome: result.outcome };
      if (before.pausedSince !== undefined)
        await record('resumed', { actor: 'system' }, { details: { byClose: true }, patch: clockPatch() });
      return result;
    },
    { validator: validated<[FulfilArgs]>(() => close(state, 'fulfilled', Date.now(), 'fulfilling')) },
  );

  await openRequest({ ...input, openedAt: Date.now() });
  opened = true;
  if (state.status === 'verifying') subjectMessages.push({ kind: 'verify', step: 'subject-verify' });

  const sendSubjectMessages = async () => {
    for (;;) {
      await condition(() => subjectMessages.length > 0 || (isClosed(state.status) && state.outcome !== 'fulfilling'));
      const next = subjectMessages.shift();
      if (!next) return;
      const sent = await messageRequestSubject({
        requestId: input.requestId,
        step: next.step,
        kind: next.kind,
        linkTtlMs: input.linkTtlMs,
        ...(next.exportId ? { exportId: next.exportId } : {}),
      });
      if (!sent.sent && sent.code)
        await record('subject-unreachable', { actor: 'system' }, { details: { message: next.kind, code: sent.code } });
    }
  };

  const verification = async () => {
    if (state.status !== 'verifying') return;
    const left = clock.receivedAt + clock.verifyWithinMs - Date.now();
    if (left > 0 && (await condition(() => state.status !== 'verifying', left))) return;
    if (state.status !== 'verifying') return;
    state = close(state, 'expired', Date.now(), 'identity-not-verified');
    clockVersion++;
    subjectMessages.push({ kind: 'expired', step: 'subject-closed' });
    await record(
      'expired',
      { actor: 'system' },
      {
        details: { reason: 'identity-not-verified', verifyWithinMs: clock.verifyWithinMs },
        patch: { status: 'expired', outcome: 'identity-not-verified', closedAt: state.closedAt! },
      },
    );
  };

  const clocks = async () => {
    for (;;) {
      if (isClosed(state.status)) return;
      const marks = pendingMarks(state);
      const version = clockVersion;
      if (marks.length === 0) {
        await condition(() => clockVersion !== version);
        continue;
      }
      const next = marks[0]!;
      const wait = next.at - Date.now();
      if (wait > 0) {
        await condition(() => clockVersion !== version, wait);
        continue;
      }
      const now = Date.now();
      // A reminder overtaken by a later mark that is also due (the worker was away) is recorded, not sent.
      const superseded = marks.some((m) => m !== next && m.at <= now);
      const label = superseded && next.mark !== 'overdue' ? `${next.mark}:skipped` : next.mark;
      const overdue = next.mark === 'overdue';
      state = { ...state, fired: [...state.fired, label], ...(overdue ? { late: true } : {}) };
      const due = dueAt(state, now);
      if (!label.endsWith(':skipped'))
        try {
          await messageRequestStaff({
            requestId: input.requestId,
            step: `clock-${next.mark}`,
            mark: next.mark as RequestStaffMark,
            percent: Math.round(next.fraction * 100),
            dueAt: due,
          });
        } catch (err) {
          log.warn('a request reminder could not be sent', { mark: next.mark, failure: (err as Error).name });
        }
      await record(
        overdue ? 'overdue' : 'reminder',
        { actor: 'system' },
        {
          step: `clock-${next.mark}`,
          details: { mark: label, dueAt: new Date(due).toISOString() },
          patch: { ...clockPatch(), ...(overdue ? { late: true } : {}) },
        },
      );
    }
  };

  await Promise.all([verification(), clocks(), sendSubjectMessages()]);
  await condition(allHandlersFinished);
  return { requestId: input.requestId, status: state.status, late: state.late };
}
