import { z } from '@hono/zod-openapi';
import { createNotice, getNotice, listNotices } from '../../activities/notices';
import { catalogPurposes, Purpose } from '../../domain/catalog';
import {
  NoticeHandler,
  NoticeInput,
  NoticeTexts,
  PreviousHandler,
  type Notice as StoredNotice,
} from '../../domain/notice';
import type { Services } from '../../runtime/services';
import { actorOf, defineRoute, endpoint, jsonResponse, v1Resource } from '../auth';
import { ApiError, problemResponse } from '../errors';
import { IdParam } from '../params';

const NewNotice = z.object(NoticeInput.shape).strict().openapi('NewNotice');

const Notice = z
  .object({
    id: z.uuid(),
    purpose: z.string(),
    version: z.number().int().openapi({ description: 'Per purpose, from 1; a new version is a new notice' }),
    texts: NoticeTexts,
    handler: NoticeHandler,
    previousHandler: PreviousHandler.optional(),
    textSha256: z.string().openapi({ description: 'SHA-256 (hex) of the canonical JSON of texts and handlers' }),
    createdBy: z.string(),
    createdAt: z.iso.datetime(),
  })
  .openapi('Notice');

const NoticeList = z.object({ items: z.array(Notice) }).openapi('NoticeList');

const ListQuery = z
  .object({ purpose: Purpose.optional().meta({ description: 'Only the versions of this purpose' }) })
  .strict();

const postNotice = defineRoute({
  roles: ['owner'],
  method: 'post',
  path: '/notices',
  tags: ['notices'],
  summary: 'Store a notice (the next version for its purpose); immutable once stored',
  request: { body: { required: true, content: { 'application/json': { schema: NewNotice } } } },
  responses: { 201: jsonResponse(Notice, 'The stored notice with its version and hash') },
});

const getOne = defineRoute({
  roles: ['owner', 'auditor'],
  method: 'get',
  path: '/notices/{id}',
  tags: ['notices'],
  summary: 'A notice',
  request: { params: IdParam },
  responses: { 200: jsonResponse(Notice, 'The notice'), 404: problemResponse('No such notice') },
});

const list = defineRoute({
  roles: ['owner', 'auditor'],
  method: 'get',
  path: '/notices',
  tags: ['notices'],
  summary: 'Notices by purpose and version',
  request: { query: ListQuery },
  responses: { 200: jsonResponse(NoticeList, 'The notices') },
});

const view = ({ createdAt, ...n }: StoredNotice) => ({ ...n, createdAt: createdAt.toISOString() });

export const noticeRoutes = ({ database: { db }, catalog }: Services) => {
  const purposes = catalogPurposes(catalog);
  return v1Resource(
    endpoint(postNotice, async (c) => {
      const input = c.req.valid('json');
      if (!purposes.has(input.purpose)) {
        throw ApiError.badRequest(`${input.purpose} is not a purpose of the data catalog`, [
          { path: 'purpose', message: 'not a purpose of the data catalog' },
        ]);
      }
      return c.json(view(await createNotice(db, input, actorOf(c.var.principal))), 201);
    }),
    endpoint(list, async (c) => c.json({ items: (await listNotices(db, c.req.valid('query'))).map(view) }, 200)),
    endpoint(getOne, async (c) => c.json(view(await getNotice(db, c.req.valid('param').id)), 200)),
  );
};
