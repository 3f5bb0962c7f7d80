import { randomUUID } from 'node:crypto';
import { z } from '@hono/zod-openapi';
import { eq, inArray } from 'drizzle-orm';
import { incidentDetail, listIncidents, storeIncidentText, dropIncidentTexts } from '../../activities/incident-records';
import { frozenPolicy, getPolicy } from '../../activities/oncall';
import { subjectImports, subjects } from '../../db/schema';
import { SubjectNoticeRequest } from '../../domain/breach-notice';
import { incidentWorkflowId } from '../../domain/ids';
import {
  GradeRequest,
  INCIDENT_STATUSES,
  IncidentRequest,
  NoteRequest,
  PostmortemRequest,
  RegulatorNotificationRequest,
  ResolveRequest,
  SEVERITIES,
  StatusRequest,
  type IncidentActor,
  type IncidentInput,
} from '../../domain/incident';
import { DEFAULT_GRADE_THRESHOLDS } from '../../domain/regulatory-clocks';
import type { Services } from '../../runtime/services';
import type { incident as incidentWorkflow } from '../../workflows/incident';
import { actorOf, defineRoute, endpoint, jsonResponse, v1Resource, type Principal } from '../auth';
import { ApiError, problemResponse } from '../errors';
import { incidentActions } from '../incident-updates';
import { startSubjectNotices } from '../incident-notices';
import { IdParam } from '../params';
import { IdempotencyHeaders, requestHash, startProcess } from '../processes';

const tags = ['incidents'];
const Started = z.object({ id: z.uuid(), workflowId: z.string() }).openapi('IncidentStarted');
const Detail = z.record(z.string(), z.unknown()).openapi('Incident', {
  description:
    'State, escalation position, pages (who was paged when), acknowledgement, deadlines with time left, regulator notifications, timeline',
});
const Summary = z.object({
  id: z.uuid(),
  title: z.string(),
  status: z.enum(INCIDENT_STATUSES),
  severity: z.enum(SEVERITIES),
  category: z.string(),
  late: z.boolean(),
  openedAt: z.iso.datetime(),
  awareAt: z.iso.datetime(),
  acknowledgedBy: z.string().nullable(),
  escalation: z.unknown(),
});
const ListQuery = z
  .object({
    status: z.enum(INCIDENT_STATUSES).optional(),
    severity: z.enum(SEVERITIES).optional(),
    limit: z.coerce.number().int().min(1).max(200).default(50),
  })
  .strict();
const Acked = z
  .object({
    status: z.enum(INCIDENT_STATUSES),
    acknowledgedBy: z.string(),
    acknowledgedAt: z.iso.datetime(),
    acknowledged: z.boolean().openapi({ description: 'False when an earlier acknowledgement stands (harmless)' }),
  })
  .openapi('IncidentAcknowledged');
const Recorded = z
  .object({ status: z.enum(INCIDENT_STATUSES), at: z.iso.datetime(), late: z.boolean().optional() })
  .openapi('IncidentUpdated');

const illegal = problemResponse('Not allowed in the incident’s status (problem code incident-<status>)');
const work = <B extends z.ZodType>(path: string, summary: string, body: B) =>
  defineRoute({
    roles: ['responder'],
    method: 'post',
    path: `/incidents/{id}/${path}`,
    tags,
    summary,
    request: { params: IdParam, body: { required: true, content: { 'application/json': { schema: body } } } },
    responses: { 200: jsonResponse(Recorded, 'Recorded'), 404: problemResponse('No such incident'), 409: illegal },
  });

const open = defineRoute({
  roles: ['responder', 'owner'],
  method: 'post',
  path: '/incidents',
  tags,
  summary: 'Open an incident (starts workflow incident-{id}): the escalation policy is frozen into it',
  request: {
    headers: IdempotencyHeaders,
    body: { required: true, content: { 'application/json': { schema: IncidentRequest } } },
  },
  responses: {
    202: jsonResponse(Started, 'Triggered'),
    200: jsonResponse(Started, 'The same Idempotency-Key and request triggered it before'),
    409: problemResponse('Idempotency-Key reused with another request'),
  },
});
const list = defineRoute({
  roles: ['responder', 'owner'],
  method: 'get',
  path: '/incidents',
  tags,
  summary: 'Incidents, newest first, by status and severity',
  request: { query: ListQuery },
  responses: { 200: jsonResponse(z.object({ incidents: z.array(Summary) }), 'Incidents') },
});
const getOne = defineRoute({
  roles: ['responder', 'owner'],
  method: 'get',
  path: '/incidents/{id}',
  tags,
  summary: 'An incident with its escalation, pages, deadlines (time left), regulator notifications and timeline',
  request: { params: IdParam },
  responses: { 200: jsonResponse(Detail, 'The incident'), 404: problemResponse('No such incident') },
});
const ack = defineRoute({
  roles: ['responder'],
  method: 'post',
  path: '/incidents/{id}/ack',
  tags,
  summary: 'Acknowledge: stops the escalation at once (a second acknowledgement is harmless)',
  request: { params: IdParam },
  responses: { 200: jsonResponse(Acked, 'Acknowledged'), 404: problemResponse('No such incident'), 409: illegal },
});
const note = work('notes', 'Add a note to the timeline', NoteRequest);
const status = work('status', 'Move to investigating or contained', StatusRequest);
const grade = work('grade', 'Confirm the CN incident grade (the CAC clocks follow it)', GradeRequest);
const regulator = work(
  'regulator-notifications',
  'Record a notification to a regulator against a deadline; a late one needs the reasons for the delay',
  RegulatorNotificationRequest,
);
const resolveRoute = work('resolve', 'Resolve with a summary: the postmortem deadline starts', ResolveRequest);
const postmortem = work('postmortem', 'Record the postmortem: the incident is closed', PostmortemRequest);

const subjectNotices = defineRoute({
  roles: ['responder', 'owner'],
  method: 'post',
  path: '/incidents/{id}/subject-notices',
  tags,
  summary:
    'Send a breach notice (what happened, likely consequences, measures taken, contact; PIPL Art. 57, GDPR Art. 34) ' +
    'to the incident’s affected subjects: a campaign (workflow campaign-{id}) whose progress the incident shows',
  request: {
    params: IdParam,
    headers: IdempotencyHeaders,
    body: { required: true, content: { 'application/json': { schema: SubjectNoticeRequest } } },
  },
  responses: {
    202: jsonResponse(
      z.object({ id: z.uuid(), workflowId: z.string(), noticeId: z.uuid() }).openapi('SubjectNoticesStarted'),
      'The campaign was started',
    ),
    200: jsonResponse(
      z.object({ id: z.uuid(), workflowId: z.string() }),
      'The same Idempotency-Key and request started it before',
    ),
    404: problemResponse('No such incident'),
    409: problemResponse('Idempotency-Key reused with another request'),
  },
});

const iso = (ms: number) => new Date(ms).toISOString();
const HOUR = 3_600_000;

export const incidentActor = (p: Principal, method: IncidentActor['method'] = 'api'): IncidentActor => ({
  ...actorOf(p),
  userId: p.userId,
  role: p.role,
  method,
});

export const incidentRoutes = (services: Services) => {
  const { db } = services.database;
  const { config, clock } = services;
  const actions = incidentActions(services);

  /** 400 naming each affected subject or import that does not exist. */
  const checkAffected = async (a: IncidentInput['affected']) => {
    const fields: { path: string; message: string }[] = [];
    if (a.subjectIds.length) {
      const found = new Set(
        (await db.select({ id: subjects.id }).from(subjects).where(inArray(subjects.id, a.subjectIds))).map(
          (r) => r.id,
        ),
      );
      a.subjectIds.forEach((id, i) => {
        if (!found.has(id)) fields.push({ path: `affected.subjectIds.${i}`, message: 'no such subject' });
      });
    }
    if (a.importId) {
      const [imp] = await db
        .select({ id: subjectImports.id })
        .from(subjectImports)
        .where(eq(subjectImports.id, a.importId));
      if (!imp) fields.push({ path: 'affected.importId', message: 'no such import' });
    }
    if (fields.length) throw ApiError.badRequest(`${fields.length} affected reference(s) do not exist`, fields);
  };

  return v1Resource(
    endpoint(subjectNotices, async (c) => {
      const { id: incidentId } = c.req.valid('param');
      const key = c.req.valid('header')['idempotency-key'];
      const r = await startSubjectNotices(services, c.var.principal, incidentId, c.req.valid('json'), key);
      return r.created
        ? c.json({ id: r.id, workflowId: r.workflowId, noticeId: r.noticeId }, 202)
        : c.json({ id: r.id, workflowId: r.workflowId }, 200);
    }),
    endpoint(open, async (c) => {
      const body = c.req.valid('json');
      const now = clock().getTime();
      const awareAt = body.awareAt === undefined ? now : Date.parse(body.awareAt);
      if (awareAt > now + 60_000)
        throw ApiError.badRequest('awareAt is in the future', [
          { path: 'awareAt', message: 'must not be in the future' },
        ]);
      const policy = await getPolicy(db, body.escalationPolicyId);
      if (!policy)
        throw ApiError.badRequest('no such escalation policy', [
          { path: 'escalationPolicyId', message: 'no such escalation policy' },
        ]);
      await checkAffected(body.affected);
      const id = randomUUID();
      const by = actorOf(c.var.principal);
      const title = await storeIncidentText(db, {
        incidentId: id,
        kind: 'title',
        body: body.title,
        createdBy: by.actor,
      });
      const input: IncidentInput = {
        incidentId: id,
        titleTextId: title.id,
        severity: body.severity,
        category: body.category,
        awareAt,
        personalData: body.personalData,
        jurisdictions: body.jurisdictions,
        affected: body.affected,
        policy: frozenPolicy(policy),
        cnOperator: body.regulatory.cnOperator ?? config.CUSTODIAN_CN_OPERATOR_TYPE,
        gradeThresholds: body.regulatory.gradeThresholds ?? DEFAULT_GRADE_THRESHOLDS,
        windows: body.regulatory.windows ?? {},
        postmortemWithinMs: body.postmortemWithin,
        openedBy: by.actor,
        ackLinkTtlMs: config.CUSTODIAN_ACK_LINK_TTL ?? 24 * HOUR,
      };
      const started = await startProcess<typeof incidentWorkflow>(services, c.var.principal, {
        route: 'POST /v1/incidents',
        idempotencyKey: c.req.valid('header')['idempotency-key'],
        // awareAt defaults to now: the hash is over the request as sent, so a retry matches.
        requestHash: requestHash(body),
        workflowType: 'incident',
        id,
        workflowId: incidentWorkflowId,
        targetType: 'incident',
        args: [input],
      }).catch(async (err: unknown) => {
        await dropIncidentTexts(db, [title.id]);
        throw err;
      });
      if (!started.created) await dropIncidentTexts(db, [title.id]);
      return c.json({ id: started.id, workflowId: started.workflowId }, started.created ? 202 : 200);
    }),
    endpoint(list, async (c) => c.json({ incidents: await listIncidents(db, c.req.valid('query')) }, 200)),
    endpoint(getOne, async (c) => {
      const { id } = c.req.valid('param');
      const found = await incidentDetail(db, id, clock());
      if (!found) throw ApiError.notFound(`incident ${id}`);
      return c.json(found, 200);
    }),
    endpoint(ack, async (c) => {
      const r = await actions.ack(c.req.valid('param').id, incidentActor(c.var.principal));
      return c.json({ ...r, acknowledgedAt: iso(r.acknowledgedAt) }, 200);
    }),
    endpoint(note, async (c) => {
      const r = await actions.note(c.req.valid('param').id, incidentActor(c.var.principal), c.req.valid('json').text);
      return c.json({ ...r, at: iso(r.at) }, 200);
    }),
    endpoint(status, async (c) => {
      const r = await actions.status(c.req.valid('param').id, incidentActor(c.var.principal), c.req.valid('json'));
      return c.json({ ...r, at: iso(r.at) }, 200);
    }),
    endpoint(grade, async (c) => {
      const r = await actions.grade(c.req.valid('param').id, incidentActor(c.var.principal), c.req.valid('json').grade);
      return c.json({ ...r, at: iso(r.at) }, 200);
    }),
    endpoint(regulator, async (c) => {
      const r = await actions.regulator(c.req.valid('param').id, incidentActor(c.var.principal), c.req.valid('json'));
      return c.json({ ...r, at: iso(r.at) }, 200);
    }),
    endpoint(resolveRoute, async (c) => {
      const r = await actions.resolve(
        c.req.valid('param').id,
        incidentActor(c.var.principal),
        c.req.valid('json').summary,
      );
      return c.json({ ...r, at: iso(r.at) }, 200);
    }),
    endpoint(postmortem, async (c) => {
      const r = await actions.postmortem(c.req.valid('param').id, incidentActor(c.var.principal), c.req.valid('json'));
      return c.json({ ...r, at: iso(r.at) }, 200);
    }),
  );
};
