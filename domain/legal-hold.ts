import { z } from 'zod';
import { StorableText } from './text';

/** Which subjects a hold covers when it names no IDs: every subject of an import, or of a jurisdiction. */
export const LegalHoldFilter = z
  .object({
    importId: z.string().min(1).max(200).optional(),
    jurisdiction: z
      .string()
      .regex(/^[A-Z]{2}$/)
      .optional(),
  })
  .strict()
  .refine((f) => f.importId !== undefined || f.jurisdiction !== undefined, {
    error: 'name importId or jurisdiction',
  });
export type LegalHoldFilter = z.infer<typeof LegalHoldFilter>;

/** `POST /v1/legal-holds`: subject IDs or a filter (not both), and a reason. */
export const LegalHoldRequest = z
  .object({
    subjectIds: z
      .array(z.uuid().transform((id) => id.toLowerCase()))
      .min(1)
      .max(100_000)
      .optional(),
    filter: LegalHoldFilter.optional(),
    reason: StorableText(3, 2000),
  })
  .strict()
  .refine((r) => (r.subjectIds === undefined) !== (r.filter === undefined), {
    error: 'name either subjectIds or filter',
    path: ['subjectIds'],
  });
export type LegalHoldRequest = z.infer<typeof LegalHoldRequest>;

export const LegalHoldRelease = z.object({ reason: StorableText(3, 2000) }).strict();
export type LegalHoldRelease = z.infer<typeof LegalHoldRelease>;
