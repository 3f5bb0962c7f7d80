import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  defineQuery,
  defineUpdate,
  log,
  patched,
  proxyActivities,
  setHandler,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { IncidentPatch } from '../activities/incidents';
import { firstStep, nextStep, type EscalationStep } from '../domain/escalation';
import {
  INCIDENT_NON_RETRYABLE,
  INCIDENT_STATE_QUERY,
  IncidentConflict,
  NOT_RESPONDER,
  REASONS_REQUIRED,
  UNKNOWN_DEADLINE,
  acknowledge,
  addNote,
  close,
  confirmGrade,
  effectiveGrade,
  exhaust,
  isAcknowledged,
  mergeDeadlines,
  reescalate,
  resolve,
  setStatus,
  type DeadlineState,
  type IncidentActor,
  type IncidentInput,
  type IncidentState,
  type WorkStatus,
} from '../domain/incident';
import { clockMarks, deadlinesFor, isLate, type CnGrade, type DeadlineKind } from '../domain/regulatory-clocks';

export const io = {
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 20, nonRetryableErrorTypes: INCIDENT_NON_RETRYABLE },
} satisfies ActivityOptions;

const { openIncident, recordIncidentEvent, notifyIncidentUsers } = proxyActivities<Activities>(io);

export interface AckResult {
  status: IncidentState['status'];
  acknowledgedBy: string;
  acknowledgedAt: number;
  /** False when an earlier acknowledgement stands and this one changed nothing. */
  acknowledged: boolean;
}
export interface Recorded {
  status: IncidentState['status'];
  at: number;
}
export interface RegulatorNotificationArgs {
  deadline: DeadlineKind;
  authority: string;
  reference: string;
  notifiedAt: number;
  reasonsTextId?: string;
}
export interface PostmortemArgs {
  impactTextId: string;
  timelineTextId: string;
  rootCauseTextId: string;
  actionsTextId: string;
}

export const ackUpdate = defineUpdate<AckResult, [IncidentActor]>('ack');
export const noteUpdate = defineUpdate<Recorded, [IncidentActor, { textId: string }]>('note');
export const statusUpdate = defineUpdate<Recorded, [IncidentActor, { status: WorkStatus; textId?: string }]>('status');
export const gradeUpdate = defineUpdate<Recorded, [IncidentActor, { grade: CnGrade }]>('grade');
export const resolveUpdate = defineUpdate<Recorded, [IncidentActor, { textId: string }]>('resolve');
export const postmortemUpdate = defineUpdate<Recorded, [IncidentActor, PostmortemArgs]>('postmortem');
export const regulatorNotificationUpdate = defineUpdate<
  Recorded & { late: boolean },
  [IncidentActor, RegulatorNotificationArgs]
>('regulator-notification');
export const incidentStateQuery = defineQuery<IncidentState>(INCIDENT_STATE_QUERY);

export type IncidentOutcome = Pick<IncidentState, 'incidentId' | 'status' | 'late' | 'round'>;

/** A validator: a responder, and a legal move now. A refusal leaves no event in history. */
const validated =
  <A extends unknown[]>(check: (by: IncidentActor, ...args: A) => unknown) =>
  (by: IncidentActor, ...args: A) => {
    if (by.role !== 'responder')
      throw ApplicationFailure.nonRetryable(
        `only a responder can work an incident (${by.actor} is ${by.role})`,
        NOT_RESPONDER,
      );
    try {
      check(by, ...args);
    } catch (err) {
      if (err instanceof IncidentConflict) throw ApplicationFailure.nonRetryable(err.message, err.code);
      throw err;
    }
  };

const who = (by: IncidentActor) => ({ actor: by.actor, apiKeyId: by.apiKeyId ?? null });

/**
 * One incident: the frozen policy pages level after level until a responder acknowledges (repeating the chain,
 * then telling the owners and marking it `unacknowledged`); regulator deadlines from the awareness time run
 * beside it with reminders and overdue escalation; notes and status changes are updates; resolution starts the
 * postmortem deadline and the postmortem closes it. The run ends once closed with every regulator deadline met.
 */
export async function incident(input: IncidentInput): Promise<IncidentOutcome> {
  const openedAt = Date.now();
  const { policy } = input;
  let state: IncidentState = {
    incidentId: input.incidentId,
    status: 'triggered',
    late: false,
    round: 1,
    lastUpdateAt: openedAt,
    affectedCount: 0,
    grade: { suggested: 'general' },
    deadlines: [],
    postmortemFired: [],
    events: 0,
  };
  /** Bumped on every change the clocks must look at again (a grade, a notification, the resolution). */
  let clockVersion = 0;
  setHandler(incidentStateQuery, () => state);

  // An update can arrive before the incident is recorded: its event waits for the row.
  let opened = false;
  const record = async (
    type: string,
    by: { actor: string; apiKeyId?: string | null },
    o: { details?: Record<string, unknown>; textId?: string; patch?: IncidentPatch; step?: string } = {},
    regulatorNotification?: Parameters<typeof recordIncidentEvent>[0]['regulatorNotification'],
  ) => {
    const step = o.step ?? `event-${++state.events}`;
    const at = Date.now();
    await condition(() => opened);
    await recordIncidentEvent({
      incidentId: input.incidentId,
      step,
      type,
      at,
      by,
      ...(o.details ? { details: o.details } : {}),
      ...(o.textId ? { textId: o.textId } : {}),
      ...(o.patch ? { patch: o.patch } : {}),
      ...(regulatorNotification ? { regulatorNotification } : {}),
    });
  };
  const deadlinesNow = (resolvedAt = state.resolvedAt) =>
    mergeDeadlines(
      state.deadlines,
      deadlinesFor({
        personalData: input.personalData,
        jurisdictions: input.jurisdictions,
        awareAt: input.awareAt,
        ...(resolvedAt === undefined ? {} : { resolvedAt }),
        grade: effectiveGrade(state.grade),
        cnOperator: input.cnOperator,
        windows: input.windows,
      }),
    );

  setHandler(
    ackUpdate,
    async (by) => {
      const before = state;
      state = acknowledge(state, by, Date.now());
      const acknowledged = state !== before;
      if (acknowledged)
        await record('acknowledged', who(by), {
          details: { method: by.method, round: state.round, level: before.escalation?.level ?? null },
          patch: { status: state.status, acknowledgedBy: state.acknowledgedBy!, acknowledgedAt: state.acknowledgedAt! },
        });
      return {
        status: state.status,
        acknowledgedBy: state.acknowledgedBy!,
        acknowledgedAt: state.acknowledgedAt!,
        acknowledged,
      };
    },
    { validator: validated((by) => acknowledge(state, by, Date.now())) },
  );
  setHandler(
    noteUpdate,
    async (by, { textId }) => {
      state = addNote(state, Date.now());
      await record('note', who(by), { textId });
      return { status: state.status, at: state.lastUpdateAt };
    },
    { validator: validated<[{ textId: string }]>(() => addNote(state, Date.now())) },
  );
  setHandler(
    statusUpdate,
    async (by, { status, textId }) => {
      const from = state.status;
      state = setStatus(state, status, Date.now());
      await record('status-changed', who(by), {
        details: { from, to: status },
        ...(textId ? { textId } : {}),
        patch: { status },
      });
      return { status: state.status, at: state.lastUpdateAt };
    },
    {
      validator: validated<[{ status: WorkStatus; textId?: string }]>((_by, { status }) =>
        setStatus(state, status, Date.now()),
      ),
    },
  );
  setHandler(
    gradeUpdate,
    async (by, { grade }) => {
      const suggested = state.grade.suggested;
      state = confirmGrade(state, grade, by, Date.now());
      state = { ...state, deadlines: deadlinesNow() };
      clockVersion++;
      await record('grade-confirmed', who(by), {
        details: { grade, suggested },
        patch: { gradeConfirmed: grade, gradeConfirmedBy: by.actor, deadlines: state.deadlines },
      });
      return { status: state.status, at: state.lastUpdateAt };
    },
    { validator: validated<[{ grade: CnGrade }]>((by, { grade }) => confirmGrade(state, grade, by, Date.now())) },
  );
  setHandler(
    resolveUpdate,
    async (by, { textId }) => {
      state = resolve(state, Date.now(), input.postmortemWithinMs);
      state = { ...state, deadlines: deadlinesNow() };
      clockVersion++;
      await record('resolved', who(by), {
        textId,
        details: { postmortemDueAt: new Date(state.postmortemDueAt!).toISOString() },
        patch: {
          status: 'resolved',
          resolvedAt: state.resolvedAt!,
          postmortemDueAt: state.postmortemDueAt!,
          deadlines: state.deadlines,
        },
      });
      return { status: state.status, at: state.lastUpdateAt };
    },
    { validator: validated<[{ textId: string }]>(() => resolve(state, Date.now(), input.postmortemWithinMs)) },
  );
  setHandler(
    postmortemUpdate,
    async (by, texts) => {
      state = close(state, Date.now());
      clockVersion++;
      await record('postmortem', who(by), { details: { ...texts } });
      await record('closed', who(by), { patch: { status: 'closed', closedAt: state.closedAt! } });
      return { status: state.status, at: state.closedAt! };
    },
    { validator: validated<[PostmortemArgs]>(() => close(state, Date.now())) },
  );
  const checkNotification = ({ deadline, notifiedAt, reasonsTextId }: RegulatorNotificationArgs) => {
    const d = state.deadlines.find((x) => x.kind === deadline);
    if (!d)
      throw ApplicationFailure.nonRetryable(
        `incident ${input.incidentId} owes no ${deadline} notification (deadlines: ${state.deadlines.map((x) => x.kind).join(', ') || 'none'})`,
        UNKNOWN_DEADLINE,
      );
    if (d.lateNeedsReasons && isLate(d, notifiedAt) && !reasonsTextId)
      throw ApplicationFailure.nonRetryable(
        `the ${deadline} notification is late (due ${new Date(d.dueAt).toISOString()}): give the reasons for the delay`,
        REASONS_REQUIRED,
      );
    return d;
  };
  setHandler(
    regulatorNotificationUpdate,
    async (by, args) => {
      const d = checkNotification(args);
      const late = isLate(d, args.notifiedAt);
      // The first notification meets the deadline; later ones (information in phases) are recorded beside it.
      const first = d.notifiedAt === undefined;
      state = {
        ...state,
        deadlines: state.deadlines.map((x) =>
          x.kind === d.kind && first ? { ...x, notifiedAt: args.notifiedAt, late } : x,
        ),
      };
      clockVersion++;
      await record(
        'regulator-notified',
        who(by),
        { patch: { deadlines: state.deadlines }, ...(args.reasonsTextId ? { textId: args.reasonsTextId } : {}) },
        {
          deadline: args.deadline,
          authority: args.authority,
          reference: args.reference,
          notifiedAt: args.notifiedAt,
          late,
          ...(args.reasonsTextId ? { reasonsTextId: args.reasonsTextId } : {}),
        },
      );
      return { status: state.status, at: args.notifiedAt, late };
    },
    {
      validator: validated<[RegulatorNotificationArgs]>((_by, args) => {
        if (state.status === 'closed' && state.deadlines.every((d) => d.immediate || d.notifiedAt !== undefined))
          throw new IncidentConflict('incident-closed', `incident ${input.incidentId} is closed`);
        checkNotification(args);
      }),
    },
  );

  const opening = await openIncident({ ...input, openedAt });
  state = {
    ...state,
    affectedCount: opening.affectedCount,
    grade: { ...state.grade, suggested: opening.gradeSuggested },
  };
  state = { ...state, deadlines: deadlinesNow() };
  opened = true;

  /**
   * Pages one step of the chain and waits for an acknowledgement until the step's wait runs out. The wait counts
   * from the decision to page, not from the page's delivery: a slow channel (or a burst of incidents queueing for
   * the outbox) must not push the next level back. Runs recorded before this rule waited for the page first.
   */
  const pageAndWait = async (step: EscalationStep): Promise<boolean> => {
    const pagedAt = Date.now();
    state = { ...state, escalation: { round: state.round, cycle: step.cycle, level: step.level, pagedAt } };
    // Retries of a page stop with the level's wait: by then the next level is due.
    const { pageIncidentLevel } = proxyActivities<Activities>({
      ...io,
      scheduleToCloseTimeout: Math.max(step.waitMs, 10_000),
    });
    const page = pageIncidentLevel({
      incidentId: input.incidentId,
      round: state.round,
      cycle: step.cycle,
      level: step.level,
      targets: step.targets,
      pagedAt,
      ackLinkTtlMs: input.ackLinkTtlMs,
    }).then(
      () => undefined,
      // The chain goes on: the next level is paged when this one's wait runs out.
      (err: unknown) =>
        log.warn('a page could not be sent', { level: step.level, cycle: step.cycle, failure: (err as Error).name }),
    );
    if (!patched('escalation-wait-from-decision')) await page;
    const left = pagedAt + step.waitMs - Date.now();
    return isAcknowledged(state) || (left > 0 && (await condition(() => isAcknowledged(state), left)));
  };

  const escalate = async () => {
    for (;;) {
      for (let step: EscalationStep | undefined = firstStep(policy); step; step = nextStep(policy, step))
        if (await pageAndWait(step)) break;
      if (!isAcknowledged(state)) {
        state = exhaust(state);
        await record('unacknowledged', { actor: 'system' }, { patch: { status: 'unacknowledged' } });
        await notifyIncidentUsers({
          incidentId: input.incidentId,
          step: `unacknowledged-r${state.round}`,
          template: 'incident-unacknowledged',
        });
        await condition(() => isAcknowledged(state));
      }
      if (policy.reescalateAfterMs === undefined) return;
      // Re-escalation: an acknowledged incident with no note or status change for the set time is paged again.
      for (;;) {
        if (state.status !== 'acknowledged') return;
        const since = state.lastUpdateAt;
        const left = since + policy.reescalateAfterMs - Date.now();
        if (left > 0) {
          await condition(() => state.lastUpdateAt !== since || state.status !== 'acknowledged', left);
          continue;
        }
        const previous = state.acknowledgedBy;
        state = reescalate(state);
        await record(
          're-escalated',
          { actor: 'system' },
          {
            details: {
              round: state.round,
              silentForMs: Date.now() - since,
              previouslyAcknowledgedBy: previous ?? null,
            },
            patch: { status: 'triggered', acknowledgedBy: null, acknowledgedAt: null },
          },
        );
        break;
      }
    }
  };

  /** Everything the clocks still have to do: reminders and overdue marks of open deadlines and the postmortem. */
  const pendingMarks = () => {
    const marks: { at: number; mark: string; fraction: number; deadline?: DeadlineState; postmortem?: true }[] = [];
    for (const d of state.deadlines) {
      if (d.notifiedAt !== undefined) continue;
      for (const m of clockMarks(d.startsAt, d.dueAt, d.immediate))
        if (!d.fired.some((f) => f.split(':')[0] === m.mark)) marks.push({ ...m, deadline: d });
    }
    if (state.resolvedAt !== undefined && state.status === 'resolved')
      for (const m of clockMarks(state.resolvedAt, state.postmortemDueAt!))
        if (!state.postmortemFired.some((f) => f.split(':')[0] === m.mark)) marks.push({ ...m, postmortem: true });
    return marks.sort((a, b) => a.at - b.at);
  };
  const openDeadlines = () => state.deadlines.some((d) => !d.immediate && d.notifiedAt === undefined);

  const clocks = async () => {
    for (;;) {
      const marks = pendingMarks();
      if (marks.length === 0) {
        if (state.status === 'closed' && !openDeadlines()) return;
        const version = clockVersion;
        await condition(() => clockVersion !== version);
        continue;
      }
      const next = marks[0]!;
      const wait = next.at - Date.now();
      if (wait > 0) {
        const version = clockVersion;
        await condition(() => clockVersion !== version, wait);
        continue;
      }
      const now = Date.now();
      const kind = next.postmortem ? 'postmortem' : next.deadline!.kind;
      // A reminder overtaken by a later mark that is also due (the worker was away) is recorded, not sent.
      const superseded = marks.some(
        (m) => m !== next && m.at <= now && (m.postmortem ? 'postmortem' : m.deadline!.kind) === kind,
      );
      const label = superseded && next.mark !== 'overdue' ? `${next.mark}:skipped` : next.mark;
      if (next.postmortem) state = { ...state, postmortemFired: [...state.postmortemFired, label] };
      else
        state = {
          ...state,
          deadlines: state.deadlines.map((d) => (d.kind === kind ? { ...d, fired: [...d.fired, label] } : d)),
        };
      const overdue = next.mark === 'overdue';
      if (overdue && !next.postmortem) state = { ...state, late: true };
      const dueAt = next.postmortem ? state.postmortemDueAt! : next.deadline!.dueAt;
      if (!label.endsWith(':skipped'))
        await notifyIncidentUsers({
          incidentId: input.incidentId,
          step: `${kind}-${next.mark}`,
          template: overdue ? 'deadline-overdue' : 'deadline-reminder',
          ...(state.acknowledgedBy ? { alsoActor: state.acknowledgedBy } : {}),
          deadline: {
            kind,
            ...(next.deadline ? { authority: next.deadline.authority } : {}),
            dueAt,
            percent: Math.round(next.fraction * 100),
          },
        });
      await record(
        overdue ? 'deadline-overdue' : 'deadline-reminder',
        { actor: 'system' },
        {
          details: { deadline: kind, mark: label, dueAt: new Date(dueAt).toISOString() },
          patch: { deadlines: state.deadlines, ...(overdue && !next.postmortem ? { late: true } : {}) },
        },
      );
    }
  };

  await Promise.all([escalate(), clocks()]);
  await condition(allHandlersFinished);
  return { incidentId: input.incidentId, status: state.status, late: state.late, round: state.round };
}
