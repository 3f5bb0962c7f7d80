import { WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { eq } from 'drizzle-orm';
import type { z } from 'zod';
import { dropIncidentTexts, storeIncidentText } from '../activities/incident-records';
import { incidents } from '../db/schema';
import { incidentWorkflowId } from '../domain/ids';
import {
  INCIDENT_CONFLICT_PREFIX,
  NOT_RESPONDER,
  REASONS_REQUIRED,
  UNKNOWN_DEADLINE,
  type IncidentActor,
  type PostmortemRequest,
  type RegulatorNotificationRequest,
  type StatusRequest,
} from '../domain/incident';
import type { Services } from '../runtime/services';
import type { CnGrade } from '../domain/regulatory-clocks';
import {
  ackUpdate,
  gradeUpdate,
  noteUpdate,
  postmortemUpdate,
  regulatorNotificationUpdate,
  resolveUpdate,
  statusUpdate,
} from '../workflows/incident';
import { ApiError } from './errors';

const REFUSALS = new Set([NOT_RESPONDER, REASONS_REQUIRED, UNKNOWN_DEADLINE]);

/** The failure an update was refused with, wherever it sits in the cause chain. */
const refusalOf = (err: unknown): ApplicationFailure | undefined => {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause)
    if (e instanceof ApplicationFailure && (e.type?.startsWith(INCIDENT_CONFLICT_PREFIX) || REFUSALS.has(e.type ?? '')))
      return e;
  return undefined;
};

/** A refusal as the API answers it: 409 incident-<status>, 403 for a non-responder, 400 naming the field. */
const problemOf = (refused: ApplicationFailure): ApiError => {
  switch (refused.type) {
    case NOT_RESPONDER:
      return ApiError.forbidden(refused.message);
    case REASONS_REQUIRED:
      return ApiError.badRequest(refused.message, [
        { path: 'reasonsForDelay', message: 'required: the notification is late' },
      ]);
    case UNKNOWN_DEADLINE:
      return ApiError.badRequest(refused.message, [
        { path: 'deadline', message: 'the incident owes no such notification' },
      ]);
    default:
      return ApiError.conflict(refused.type!, refused.message);
  }
};

/**
 * The incident workflow's updates as the API and the acknowledgement page send them: texts are stored first (the
 * workflow gets their IDs only) and dropped again when the update is refused; refusals become ApiErrors.
 */
export const incidentUpdates = ({ database, temporal }: Pick<Services, 'database' | 'temporal'>) => {
  const { db } = database;
  const row = async (id: string) => (await db.select().from(incidents).where(eq(incidents.id, id)))[0];

  return {
    row,
    /**
     * Stores `texts` (kind → body) for the incident, then runs the update with their IDs. A refusal, or a run that
     * has ended, is a problem naming the incident's state; the texts are then removed.
     */
    async run<R>(
      id: string,
      by: IncidentActor,
      texts: Record<string, string | undefined>,
      send: (h: WorkflowHandle, textIds: Record<string, string>) => Promise<R>,
    ): Promise<R> {
      const current = await row(id);
      if (!current) throw ApiError.notFound(`incident ${id}`);
      const textIds: Record<string, string> = {};
      for (const [kind, body] of Object.entries(texts))
        if (body !== undefined)
          textIds[kind] = (await storeIncidentText(db, { incidentId: id, kind, body, createdBy: by.actor })).id;
      try {
        return await send(temporal.workflow.getHandle(incidentWorkflowId(id)), textIds);
      } catch (err) {
        await dropIncidentTexts(db, Object.values(textIds));
        const refused = refusalOf(err);
        if (refused) throw problemOf(refused);
        if (err instanceof WorkflowUpdateFailedError) throw err;
        const now = await row(id);
        if (err instanceof WorkflowNotFoundError || now?.status === 'closed')
          throw ApiError.conflict(
            `incident-${now?.status ?? 'closed'}`,
            `incident ${id} is ${now?.status ?? 'closed'}`,
          );
        throw err;
      }
    },
  };
};

type StatusBody = z.infer<typeof StatusRequest>;
type RegulatorBody = z.infer<typeof RegulatorNotificationRequest>;
type PostmortemBody = z.infer<typeof PostmortemRequest>;

/**
 * The incident's actions as the API routes and the console send them: each stores its texts, runs its update and
 * turns a refusal into an ApiError (see `incidentUpdates`). `now` checks a regulator notification's time.
 */
export const incidentActions = (services: Pick<Services, 'database' | 'temporal' | 'clock'>) => {
  const updates = incidentUpdates(services);
  return {
    ack: (id: string, by: IncidentActor) => updates.run(id, by, {}, (h) => h.executeUpdate(ackUpdate, { args: [by] })),
    note: (id: string, by: IncidentActor, text: string) =>
      updates.run(id, by, { note: text }, (h, t) => h.executeUpdate(noteUpdate, { args: [by, { textId: t.note! }] })),
    status: (id: string, by: IncidentActor, body: StatusBody) =>
      updates.run(id, by, { note: body.note }, (h, t) =>
        h.executeUpdate(statusUpdate, { args: [by, { status: body.status, ...(t.note ? { textId: t.note } : {}) }] }),
      ),
    regulator: (id: string, by: IncidentActor, body: RegulatorBody) => {
      const now = services.clock().getTime();
      const notifiedAt = body.notifiedAt === undefined ? now : Date.parse(body.notifiedAt);
      if (notifiedAt > now + 60_000)
        throw ApiError.badRequest('notifiedAt is in the future', [
          { path: 'notifiedAt', message: 'must not be in the future' },
        ]);
      return updates.run(id, by, { 'delay-reasons': body.reasonsForDelay }, (h, t) =>
        h.executeUpdate(regulatorNotificationUpdate, {
          args: [
            by,
            {
              deadline: body.deadline,
              authority: body.authority,
              reference: body.reference,
              notifiedAt,
              ...(t['delay-reasons'] ? { reasonsTextId: t['delay-reasons'] } : {}),
            },
          ],
        }),
      );
    },
    /** Confirms the CN incident grade the affected count suggested (the CAC clocks follow it). */
    grade: (id: string, by: IncidentActor, grade: CnGrade) =>
      updates.run(id, by, {}, (h) => h.executeUpdate(gradeUpdate, { args: [by, { grade }] })),
    resolve: (id: string, by: IncidentActor, summary: string) =>
      updates.run(id, by, { 'resolution-summary': summary }, (h, t) =>
        h.executeUpdate(resolveUpdate, { args: [by, { textId: t['resolution-summary']! }] }),
      ),
    postmortem: (id: string, by: IncidentActor, body: PostmortemBody) =>
      updates.run(
        id,
        by,
        {
          'postmortem-impact': body.impact,
          'postmortem-timeline': body.timeline,
          'postmortem-root-cause': body.rootCause,
          'postmortem-actions': body.actions,
        },
        (h, t) =>
          h.executeUpdate(postmortemUpdate, {
            args: [
              by,
              {
                impactTextId: t['postmortem-impact']!,
                timelineTextId: t['postmortem-timeline']!,
                rootCauseTextId: t['postmortem-root-cause']!,
                actionsTextId: t['postmortem-actions']!,
              },
            ],
          }),
      ),
  };
};
