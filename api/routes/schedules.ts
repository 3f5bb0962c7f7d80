import { randomUUID } from 'node:crypto';
import { z } from '@hono/zod-openapi';
import { appendAudit } from '../../activities/audit';
import { patchSchedule, triggerSchedule, viewSchedule } from '../../activities/schedules';
import { DomainError } from '../../domain/errors';
import { SCHEDULE_PATCH_FIELDS, refineSchedulePatch, type SchedulePatch } from '../../domain/schedules';
import type { Services } from '../../runtime/services';
import { actorOf, defineRoute, endpoint, jsonResponse, v1Resource, type Principal } from '../auth';
import { ApiError, problemResponse } from '../errors';

const ScheduleName = z.object({
  id: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,62}$/, { error: 'must be a schedule name such as backup-retention' })
    .openapi({ param: { name: 'id', in: 'path' }, example: 'backup-retention' }),
});

const SpecText = z
  .union([z.object({ cron: z.string() }), z.object({ every: z.string().openapi({ example: 'PT1H' }) })])
  .nullable();

const ScheduleRun = z
  .object({
    workflowId: z.string().openapi({ description: '`scheduledRun`, as `schedule-{name}-{time}`' }),
    scheduledAt: z.iso.datetime(),
    startedAt: z.iso.datetime(),
    status: z.string().openapi({ example: 'COMPLETED' }),
    closedAt: z.iso.datetime().nullable(),
    result: z
      .unknown()
      .openapi({ description: "The process's workflow ID and result (IDs, counts, verdicts), when completed" }),
    failureType: z.string().nullable(),
  })
  .openapi('ScheduleRun');

const Schedule = z
  .object({
    id: z.string(),
    scheduleId: z.string().openapi({ description: 'The Temporal schedule' }),
    workflowType: z.string().openapi({ description: 'The process each run starts' }),
    created: z.boolean().openapi({ description: 'False until a worker has upserted it' }),
    spec: SpecText.openapi({ description: 'Cron (UTC) or interval (ISO 8601)' }),
    catchupWindow: z.string().nullable(),
    paused: z.boolean().nullable(),
    note: z.string().nullable(),
    nextRuns: z.array(z.iso.datetime()),
    running: z.array(z.string()),
    lastRun: ScheduleRun.nullable(),
    actions: z.object({ taken: z.number(), skippedOverlap: z.number(), missedCatchupWindow: z.number() }).nullable(),
  })
  .openapi('Schedule');

const Patch = refineSchedulePatch(
  z
    .object({
      ...SCHEDULE_PATCH_FIELDS,
      cron: SCHEDULE_PATCH_FIELDS.cron.meta({
        description: 'Five fields, UTC: minute hour day-of-month month day-of-week',
      }),
      every: SCHEDULE_PATCH_FIELDS.every.meta({ description: 'An interval: ISO 8601 (PT1H) or words ("30 seconds")' }),
    })
    .strict()
    .openapi('SchedulePatch'),
);

const tags = ['schedules'];

const list = defineRoute({
  roles: ['admin'],
  method: 'get',
  path: '/schedules',
  tags,
  summary: 'Every recurring review: spec, paused, next runs, the last run and its result',
  responses: { 200: jsonResponse(z.object({ schedules: z.array(Schedule) }), 'The declared schedules') },
});

const edit = defineRoute({
  roles: ['admin'],
  method: 'patch',
  path: '/schedules/{id}',
  tags,
  summary: 'Change when a review runs (cron or interval), pause or resume it, or note why',
  request: { params: ScheduleName, body: { required: true, content: { 'application/json': { schema: Patch } } } },
  responses: { 200: jsonResponse(Schedule, 'The schedule after the change'), 404: problemResponse('No such schedule') },
});

const trigger = defineRoute({
  roles: ['admin'],
  method: 'post',
  path: '/schedules/{id}/trigger',
  tags,
  summary: 'Run a review now (refused while one of its runs is in progress)',
  request: { params: ScheduleName },
  responses: {
    202: jsonResponse(z.object({ id: z.string(), scheduleId: z.string(), triggeredAt: z.iso.datetime() }), 'Started'),
    404: problemResponse('No such schedule'),
    409: problemResponse('A run of this schedule is in progress (schedule-running)'),
  },
});

/**
 * Changing and triggering a schedule as `principal`, audited: PATCH /v1/schedules/{id}, POST .../trigger and the
 * console's Pause/Resume and Run-now buttons all come here. 404 for an undeclared name; 400 naming cron or every.
 */
export const scheduleActions = ({ database: { db }, temporal, schedules, clock }: Services) => {
  const declared = (name: string) => {
    const schedule = schedules.find((s) => s.name === name);
    if (!schedule) throw ApiError.notFound(`schedule ${name}`);
    return schedule;
  };
  return {
    declared,
    async edit(principal: Principal, name: string, patch: SchedulePatch) {
      const schedule = declared(name);
      try {
        await patchSchedule(temporal, schedule, patch);
      } catch (err) {
        if (err instanceof DomainError && err.kind === 'invalid') {
          const field = patch.cron !== undefined ? 'cron' : 'every';
          throw ApiError.badRequest(`Temporal refused the ${field}`, [{ path: field, message: err.message }]);
        }
        throw err;
      }
      await appendAudit(db, {
        ...actorOf(principal),
        action: 'schedule.updated',
        targetType: 'schedule',
        targetId: schedule.name,
        // The note is the operator's free text: the trail records that it changed, not what it says.
        details: {
          scheduleId: schedule.scheduleId,
          ...(patch.cron !== undefined ? { cron: patch.cron } : {}),
          ...(patch.every !== undefined ? { everyMs: patch.every } : {}),
          ...(patch.paused !== undefined ? { paused: patch.paused } : {}),
          ...(patch.note !== undefined ? { noteChanged: true } : {}),
        },
        idempotencyKey: `schedule:${schedule.name}:updated:${randomUUID()}`,
      });
      return viewSchedule(temporal, schedule);
    },
    async trigger(principal: Principal, name: string) {
      const schedule = declared(name);
      const triggeredAt = clock().toISOString();
      await triggerSchedule(temporal, schedule);
      await appendAudit(db, {
        ...actorOf(principal),
        action: 'schedule.triggered',
        targetType: 'schedule',
        targetId: schedule.name,
        details: { scheduleId: schedule.scheduleId },
        idempotencyKey: `schedule:${schedule.name}:triggered:${randomUUID()}`,
      });
      return { id: schedule.name, scheduleId: schedule.scheduleId, triggeredAt };
    },
  };
};

export const scheduleRoutes = (services: Services) => {
  const { temporal, schedules } = services;
  const actions = scheduleActions(services);
  return v1Resource(
    endpoint(list, async (c) =>
      c.json({ schedules: await Promise.all(schedules.map((s) => viewSchedule(temporal, s))) }, 200),
    ),
    endpoint(edit, async (c) =>
      c.json(await actions.edit(c.var.principal, c.req.valid('param').id, c.req.valid('json')), 200),
    ),
    endpoint(trigger, async (c) => c.json(await actions.trigger(c.var.principal, c.req.valid('param').id), 202)),
  );
};
