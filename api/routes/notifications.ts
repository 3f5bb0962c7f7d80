import { z } from '@hono/zod-openapi';
import { decodeNotificationCursor, listNotifications } from '../../activities/notify';
import { NOTIFICATION_TEMPLATES } from '../../domain/notification-templates';
import type { Services } from '../../runtime/services';
import { defineRoute, endpoint, jsonResponse, v1Resource } from '../auth';

const NotificationQuery = z
  .object({
    status: z.enum(['pending', 'sent', 'failed']).optional(),
    template: z.enum(NOTIFICATION_TEMPLATES).optional(),
    subjectId: z
      .uuid()
      .transform((id) => id.toLowerCase())
      .optional(),
    after: z
      .string()
      .max(200)
      .refine((c) => decodeNotificationCursor(c) !== undefined, { error: 'must be a cursor from a previous page' })
      .optional()
      .openapi({ description: 'The `next` cursor of the previous page' }),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  })
  // A misspelt filter must fail, not silently widen the result.
  .strict();

const Notification = z
  .object({
    id: z.uuid(),
    idempotencyKey: z.string(),
    channel: z.enum(['log', 'webhook', 'smtp']),
    template: z.string(),
    locale: z.string(),
    subjectId: z.uuid().nullable(),
    recipientRef: z.string().openapi({ description: '`subject:<id>`: the address is never stored' }),
    status: z.enum(['pending', 'sent', 'failed']),
    attempts: z.number().int(),
    lastError: z.string().nullable().openapi({ description: 'A code, without personal data' }),
    bodySha256: z.string().nullable().openapi({ description: 'SHA-256 of the sent subject line and text' }),
    workflowId: z.string().nullable(),
    runId: z.string().nullable(),
    createdAt: z.iso.datetime(),
    sentAt: z.iso.datetime().nullable(),
  })
  .openapi('Notification');

const NotificationPage = z
  .object({
    notifications: z.array(Notification),
    next: z.string().nullable().openapi({ description: 'Pass as `after` for the next page; null at the end' }),
  })
  .openapi('NotificationPage');

const listOutbox = defineRoute({
  roles: ['admin'],
  method: 'get',
  path: '/notifications',
  tags: ['notifications'],
  summary: 'The notification outbox, newest first, filtered, with keyset paging (no addresses or texts)',
  request: { query: NotificationQuery },
  responses: { 200: jsonResponse(NotificationPage, 'A page of outbox rows') },
});

export const notificationRoutes = ({ database: { db } }: Services) =>
  v1Resource(endpoint(listOutbox, async (c) => c.json(await listNotifications(db, c.req.valid('query')), 200)));
