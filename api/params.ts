import { z } from '@hono/zod-openapi';

/**
 * A UUID path parameter, normalised to lower case before anything is read or written: workflow IDs and
 * audit targets are built from it, so `ABC…` and `abc…` must name the same record.
 */
export const IdParam = z.object({
  id: z
    .uuid()
    .transform((id) => id.toLowerCase())
    .openapi({ param: { name: 'id', in: 'path' }, type: 'string', format: 'uuid' }),
});
