import { WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { destructionDetail } from '../activities/destruction-records';
import { destructionTexts } from '../activities/process-texts';
import {
  DESTRUCTION_CONFLICT_PREFIX,
  NOT_APPROVER,
  REQUESTER_CANNOT_APPROVE,
  type ApprovalRequest,
  type DestructionActor,
} from '../domain/destruction';
import { destructionWorkflowId } from '../domain/ids';
import type { Services } from '../runtime/services';
import { approvalUpdate, cancelUpdate } from '../workflows/destruction';
import { actorOf, type Principal } from './auth';
import { ApiError } from './errors';

/** The failure an update was refused with, wherever it sits in the cause chain. */
const refusalOf = (err: unknown): ApplicationFailure | undefined => {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause)
    if (
      e instanceof ApplicationFailure &&
      (e.type?.startsWith(DESTRUCTION_CONFLICT_PREFIX) ||
        e.type === NOT_APPROVER ||
        e.type === REQUESTER_CANNOT_APPROVE)
    )
      return e;
  return undefined;
};

export const destructionActor = (p: Principal): DestructionActor => ({
  ...actorOf(p),
  userId: p.userId,
  role: p.role,
});

/**
 * A destruction's free-text-carrying steps as the API routes and the console run them: the text (reason, comment,
 * cancellation reason) is stored first and the workflow gets its ID only; a refusal becomes an ApiError (403 for
 * someone who may not decide, 409 destruction-<status>) and the text is dropped again.
 */
export const destructionActions = ({ database, temporal }: Pick<Services, 'database' | 'temporal'>) => {
  const { db } = database;

  /**
   * Stores a text, then runs `use` with its ID; the text is dropped again when `use` fails or says it did not take
   * it (an ambiguous start failure aside, nothing then refers to it).
   */
  const withText = async <R>(
    t: { processId: string; kind: string; body: string; createdBy: string },
    use: (textId: string) => Promise<R>,
    taken: (r: R) => boolean = () => true,
  ): Promise<R> => {
    const { id: textId } = await destructionTexts.store(db, t);
    let result: R;
    try {
      result = await use(textId);
    } catch (err) {
      await destructionTexts.drop(db, [textId]);
      throw err;
    }
    if (!taken(result)) await destructionTexts.drop(db, [textId]);
    return result;
  };

  /** Runs an update; a refusal, or a run that has ended, is the problem naming the request's state. */
  const update = async <R>(id: string, send: (h: WorkflowHandle) => Promise<R>): Promise<R> => {
    const handle = temporal.workflow.getHandle(destructionWorkflowId(id));
    // The record is the workflow's first step: a request just started may not have it yet.
    if (!(await destructionDetail(db, id)) && !(await handle.describe().catch(() => undefined)))
      throw ApiError.notFound(`destruction ${id}`);
    try {
      return await send(handle);
    } catch (err) {
      const refused = refusalOf(err);
      if (refused?.type === NOT_APPROVER || refused?.type === REQUESTER_CANNOT_APPROVE)
        throw ApiError.forbidden(refused.message);
      if (refused) throw ApiError.conflict(refused.type!, refused.message);
      if (err instanceof WorkflowUpdateFailedError) throw err;
      const now = await destructionDetail(db, id);
      if (err instanceof WorkflowNotFoundError || (now && now.finishedAt))
        throw ApiError.conflict(
          `destruction-${now?.status ?? 'ended'}`,
          `destruction ${id} is ${now?.status ?? 'ended'}`,
        );
      throw err;
    }
  };

  return {
    withText,
    /** Approve or reject with a comment (the workflow applies four-eyes: approvers only, never the requester). */
    approve: (id: string, principal: Principal, { decision, comment }: ApprovalRequest) => {
      const by = destructionActor(principal);
      return withText(
        { processId: id, kind: 'comment', body: comment, createdBy: by.actor },
        (commentTextId) =>
          update(id, (h) => h.executeUpdate(approvalUpdate, { args: [by, { decision, commentTextId }] })),
        // The same approver's earlier decision stands, with its comment.
        (r) => r.counted,
      );
    },
    /** Cancel while awaiting approval or in the grace window, with the reason. */
    cancel: (id: string, principal: Principal, { reason }: { reason: string }) => {
      const by = destructionActor(principal);
      return withText({ processId: id, kind: 'cancel-reason', body: reason, createdBy: by.actor }, (reasonTextId) =>
        update(id, (h) => h.executeUpdate(cancelUpdate, { args: [by, { reasonTextId }] })),
      );
    },
  };
};
