import { z } from '@hono/zod-openapi';
import { setUserContact } from '../../activities/user-contacts';
import { NOTIFICATION_LOCALES } from '../../domain/notification-templates';
import { StorableText } from '../../domain/text';
import type { Services } from '../../runtime/services';
import { actorOf, defineRoute, endpoint, jsonResponse, v1Resource } from '../auth';
import { problemResponse } from '../errors';
import { IdParam } from '../params';

const Contact = z
  .object({
    /** What the notifier's channel delivers to: a mail address for SMTP, a handle the webhook receiver routes on. */
    address: StorableText(3, 320),
    locale: z.enum(NOTIFICATION_LOCALES).default('zh-CN'),
  })
  .strict()
  .openapi('UserContact');
const ContactSet = z.object({ userId: z.uuid(), locale: z.enum(NOTIFICATION_LOCALES) }).openapi('UserContactSet');

const put = defineRoute({
  roles: ['admin'],
  method: 'put',
  path: '/users/{id}/contact',
  tags: ['users'],
  summary: 'Set where a user is paged (stored encrypted; never shown again)',
  request: { params: IdParam, body: { required: true, content: { 'application/json': { schema: Contact } } } },
  responses: { 200: jsonResponse(ContactSet, 'Set'), 404: problemResponse('No such user') },
});

export const userContactRoutes = ({ database: { db }, keyring }: Services) =>
  v1Resource(
    endpoint(put, async (c) =>
      c.json(
        await setUserContact(db, keyring, c.req.valid('param').id, c.req.valid('json'), actorOf(c.var.principal)),
        200,
      ),
    ),
  );
