import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { appendAudit } from '../activities/audit';
import { createNotice } from '../activities/notices';
import type { Principal } from '../activities/users';
import { incidentTimeline, incidents, requestIdempotency } from '../db/schema';
import { breachNotice, type SubjectNoticeRequest } from '../domain/breach-notice';
import type { CampaignInput } from '../domain/campaign';
import { campaignWorkflowId, incidentWorkflowId } from '../domain/ids';
import type { Services } from '../runtime/services';
import type { campaign as campaignWorkflow } from '../workflows/campaign';
import { actorOf } from './auth';
import { ApiError } from './errors';
import { requestHash, startProcess } from './processes';

export const SUBJECT_NOTICES_ROUTE = 'POST /v1/incidents/{id}/subject-notices';

export type SubjectNoticesStarted =
  | { created: true; id: string; workflowId: string; noticeId: string }
  | { created: false; id: string; workflowId: string };

/**
 * Sends a breach notice to the incident's affected subjects, as the API route and the console's form do: the notice
 * is stored, a `campaign-{id}` started over the scope `{ incidentId }`, and the incident's timeline entry written
 * with its audit entry in one transaction. A retry with the same Idempotency-Key and body is answered before a
 * notice is stored (the notices table is append-only).
 */
export const startSubjectNotices = async (
  services: Services,
  principal: Principal,
  incidentId: string,
  body: SubjectNoticeRequest,
  idempotencyKey: string | undefined,
): Promise<SubjectNoticesStarted> => {
  const { db } = services.database;
  const hash = requestHash({ incidentId, ...body });
  const [incident] = await db.select({ id: incidents.id }).from(incidents).where(eq(incidents.id, incidentId));
  if (!incident) throw ApiError.notFound(`incident ${incidentId}`);
  if (idempotencyKey !== undefined) {
    const [before] = await db
      .select()
      .from(requestIdempotency)
      .where(
        and(
          eq(requestIdempotency.userId, principal.userId),
          eq(requestIdempotency.route, SUBJECT_NOTICES_ROUTE),
          eq(requestIdempotency.key, idempotencyKey),
        ),
      );
    if (before?.requestHash === hash) return { created: false, id: before.resourceId, workflowId: before.workflowId };
  }
  const by = actorOf(principal);
  const notice = await createNotice(db, breachNotice(body), by);
  const id = randomUUID();
  const input: CampaignInput = {
    campaignId: id,
    noticeId: notice.id,
    purposeChanged: false,
    filter: { incidentId },
    ...(body.ratePerSecond === undefined ? {} : { ratePerSecond: body.ratePerSecond }),
    batchSize: body.batchSize,
    requestedBy: by.actor,
  };
  const started = await startProcess<typeof campaignWorkflow>(services, principal, {
    route: SUBJECT_NOTICES_ROUTE,
    idempotencyKey,
    requestHash: hash,
    workflowType: 'campaign',
    id,
    workflowId: campaignWorkflowId,
    targetType: 'campaign',
    args: [input],
  });
  if (!started.created) return { created: false, id: started.id, workflowId: started.workflowId };
  const runId = await services.temporal.workflow
    .getHandle(started.workflowId)
    .describe()
    .then((d) => d.runId)
    .catch(() => null);
  const key = `${incidentWorkflowId(incidentId)}:subject-notices:${id}`;
  const details = { campaignId: id, noticeId: notice.id, textSha256: notice.textSha256 };
  await db.transaction(async (tx) => {
    await tx.insert(incidentTimeline).values({
      incidentId,
      type: 'subject-notices-started',
      at: services.clock(),
      actor: by.actor,
      details,
      idempotencyKey: key,
      workflowId: started.workflowId,
      runId,
    });
    await appendAudit(tx, {
      ...by,
      action: 'incident.subject-notices-started',
      targetType: 'incident',
      targetId: incidentId,
      workflowId: started.workflowId,
      runId,
      details,
      idempotencyKey: key,
    });
  });
  return { created: true, id, workflowId: started.workflowId, noticeId: notice.id };
};
