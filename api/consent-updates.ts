import { WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { eq } from 'drizzle-orm';
import { consents } from '../db/schema';
import {
  CONSENT_CONFLICT_PREFIX,
  SENSITIVE_CHOICE_FAILURE,
  SensitiveChoiceInvalid,
  sensitiveAnswer,
  sensitiveCategories,
  type ConsentActor,
  type ConsentDecision,
} from '../domain/consent';
import { consentWorkflowId } from '../domain/ids';
import type { Services } from '../runtime/services';
import {
  denyUpdate,
  grantUpdate,
  withdrawUpdate,
  type ConsentDecisionResult,
  type ConsentWithdrawalResult,
} from '../workflows/consent';
import { ApiError } from './errors';

/** The failure an update was refused with (consent-<state> or sensitive-choice), wherever it sits in the chain. */
const refusalOf = (err: unknown): ApplicationFailure | undefined => {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause)
    if (
      e instanceof ApplicationFailure &&
      (e.type?.startsWith(CONSENT_CONFLICT_PREFIX) || e.type === SENSITIVE_CHOICE_FAILURE)
    )
      return e;
  return undefined;
};

const sensitiveProblem = (message: string) => ApiError.badRequest(message, [{ path: 'sensitive', message }]);

/**
 * The consent workflow's updates as the API and the subject's page send them: one place that checks the
 * separate sensitive answer against the purpose and turns refusals into ApiErrors (409 consent-<state>, 400
 * naming `sensitive`, 404). Both callers then show the same outcome, as problem+json or as a page.
 */
export const consentUpdates = ({
  database,
  temporal,
  catalog,
}: Pick<Services, 'database' | 'temporal' | 'catalog'>) => {
  const { db } = database;
  const row = async (id: string) => (await db.select().from(consents).where(eq(consents.id, id)))[0];

  /** Runs an update; a refusal, or a workflow that has ended, is a 409 naming the consent's state. */
  const run = async <R>(id: string, doing: string, send: (h: WorkflowHandle) => Promise<R>): Promise<R> => {
    try {
      return await send(temporal.workflow.getHandle(consentWorkflowId(id)));
    } catch (err) {
      const refused = refusalOf(err);
      if (refused?.type === SENSITIVE_CHOICE_FAILURE) throw sensitiveProblem(refused.message);
      if (refused) throw ApiError.conflict(refused.type!, refused.message);
      if (err instanceof WorkflowUpdateFailedError) throw err;
      const current = await row(id);
      if (!current) throw ApiError.notFound(`consent ${id}`);
      if (err instanceof WorkflowNotFoundError || ['denied', 'expired', 'withdrawn'].includes(current.status))
        throw ApiError.conflict(
          `consent-${current.status}`,
          `consent ${id} is ${current.status}: it cannot be ${doing}`,
        );
      throw err;
    }
  };

  return {
    row,
    /** Grants or refuses; `sensitive` is the separate answer a purpose touching sensitive data needs (PIPL Art. 29). */
    async decide(
      id: string,
      decision: ConsentDecision,
      by: ConsentActor,
      sensitive?: boolean,
    ): Promise<ConsentDecisionResult> {
      const current = await row(id);
      // Checked here for a clear 400 before anything is sent; the workflow's validator checks it again.
      if (current) {
        try {
          sensitiveAnswer(sensitiveCategories(catalog, current.purpose).length > 0, decision, sensitive);
        } catch (err) {
          if (err instanceof SensitiveChoiceInvalid) throw sensitiveProblem(err.message);
          throw err;
        }
      }
      const args = { ...by, ...(sensitive === undefined ? {} : { sensitive }) };
      return run(id, 'decided', (h) =>
        h.executeUpdate(decision === 'grant' ? grantUpdate : denyUpdate, { args: [args] }),
      );
    },
    /** Ends a grant, and with it the sensitive answer; the purpose is restricted for the subject. */
    withdraw: (id: string, by: ConsentActor): Promise<ConsentWithdrawalResult> =>
      run(id, 'withdrawn', (h) => h.executeUpdate(withdrawUpdate, { args: [by] })),
  };
};
