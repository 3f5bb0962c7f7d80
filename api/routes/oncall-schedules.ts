import { z } from '@hono/zod-openapi';
import {
  addOverride,
  createSchedule,
  getSchedule,
  listSchedules,
  notResponders,
  onCallAt,
  scheduleView,
} from '../../activities/oncall';
import { HANDOFF_UNITS, OncallOverride, OncallSchedule } from '../../domain/oncall';
import type { Services } from '../../runtime/services';
import { actorOf, defineRoute, endpoint, jsonResponse, v1Resource } from '../auth';
import { ApiError, problemResponse } from '../errors';
import { IdParam } from '../params';

const NewSchedule = OncallSchedule;
const NewOverride = OncallOverride;
const Schedule = z
  .object({
    id: z.uuid(),
    name: z.string(),
    timeZone: z.string().openapi({ description: 'IANA zone name' }),
    start: z.string().openapi({ description: 'The first handoff, local date-time in the zone' }),
    handoff: z.object({ every: z.number().int(), unit: z.enum(HANDOFF_UNITS) }),
    responders: z.array(z.uuid()),
    overrides: z.array(
      z.object({ userId: z.uuid(), from: z.iso.datetime(), to: z.iso.datetime(), addedBy: z.string() }),
    ),
    createdBy: z.string(),
    createdAt: z.iso.datetime(),
  })
  .openapi('OncallSchedule');
const Current = z
  .object({
    scheduleId: z.uuid(),
    at: z.iso.datetime(),
    onCall: z
      .object({
        userId: z.uuid(),
        source: z.enum(['rotation', 'override']),
        shift: z.number().int().optional(),
        from: z.iso.datetime(),
        until: z.iso.datetime(),
      })
      .nullable()
      .openapi({ description: 'Null before the rotation starts when no override covers the time' }),
  })
  .openapi('OncallNow');
const AtQuery = z
  .object({
    at: z.iso
      .datetime({ offset: true })
      .optional()
      .openapi({ description: 'The instant to ask about (ISO 8601 with offset); default now' }),
  })
  .strict();

const tags = ['on-call'];

const create = defineRoute({
  roles: ['admin'],
  method: 'post',
  path: '/oncall-schedules',
  tags,
  summary: 'Create an on-call rotation: responders in order, a handoff interval from a local start in a time zone',
  request: { body: { required: true, content: { 'application/json': { schema: NewSchedule } } } },
  responses: { 201: jsonResponse(Schedule, 'The schedule') },
});
const list = defineRoute({
  roles: ['admin', 'responder'],
  method: 'get',
  path: '/oncall-schedules',
  tags,
  summary: 'Every on-call schedule',
  responses: { 200: jsonResponse(z.object({ schedules: z.array(Schedule) }), 'The schedules') },
});
const getOne = defineRoute({
  roles: ['admin', 'responder'],
  method: 'get',
  path: '/oncall-schedules/{id}',
  tags,
  summary: 'One on-call schedule',
  request: { params: IdParam },
  responses: { 200: jsonResponse(Schedule, 'The schedule'), 404: problemResponse('No such schedule') },
});
const current = defineRoute({
  roles: ['admin', 'responder'],
  method: 'get',
  path: '/oncall-schedules/{id}/current',
  tags,
  summary: 'Who is on call at a time (default now), overrides included',
  request: { params: IdParam, query: AtQuery },
  responses: { 200: jsonResponse(Current, 'Who is on call'), 404: problemResponse('No such schedule') },
});
const override = defineRoute({
  roles: ['admin', 'responder'],
  method: 'post',
  path: '/oncall-schedules/{id}/overrides',
  tags,
  summary: 'Someone covers from/to; a later override wins where two overlap',
  request: { params: IdParam, body: { required: true, content: { 'application/json': { schema: NewOverride } } } },
  responses: {
    201: jsonResponse(Schedule, 'The schedule with the override'),
    404: problemResponse('No such schedule'),
  },
});

const iso = (ms: number) => new Date(ms).toISOString();

/** 400 naming each listed user that is not an active responder. */
const requireResponders = async (db: Services['database']['db'], ids: string[], path: (i: number) => string) => {
  const bad = await notResponders(db, ids);
  if (bad.length)
    throw ApiError.badRequest(
      `${bad.length} user(s) are not active responders`,
      bad.map((i) => ({ path: path(i), message: 'not an active responder' })),
    );
};

export const oncallScheduleRoutes = ({ database: { db }, clock }: Services) =>
  v1Resource(
    endpoint(create, async (c) => {
      const body = c.req.valid('json');
      await requireResponders(db, body.responders, (i) => `responders.${i}`);
      await requireResponders(
        db,
        body.overrides.map((o) => o.userId),
        (i) => `overrides.${i}.userId`,
      );
      return c.json(await createSchedule(db, body, actorOf(c.var.principal)), 201);
    }),
    endpoint(list, async (c) => c.json({ schedules: (await listSchedules(db)).map(scheduleView) }, 200)),
    endpoint(getOne, async (c) => {
      const row = await getSchedule(db, c.req.valid('param').id);
      if (!row) throw ApiError.notFound(`on-call schedule ${c.req.valid('param').id}`);
      return c.json(scheduleView(row), 200);
    }),
    endpoint(current, async (c) => {
      const { id } = c.req.valid('param');
      const { at } = c.req.valid('query');
      const when = at === undefined ? clock().getTime() : Date.parse(at);
      const on = await onCallAt(db, id, when);
      return c.json(
        {
          scheduleId: id,
          at: iso(when),
          onCall: on
            ? {
                userId: on.userId,
                source: on.source,
                ...(on.shift === undefined ? {} : { shift: on.shift }),
                from: iso(on.from),
                until: iso(on.until),
              }
            : null,
        },
        200,
      );
    }),
    endpoint(override, async (c) => {
      const body = c.req.valid('json');
      await requireResponders(db, [body.userId], () => 'userId');
      return c.json(await addOverride(db, c.req.valid('param').id, body, actorOf(c.var.principal)), 201);
    }),
  );
