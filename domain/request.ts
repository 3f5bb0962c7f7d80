import { z } from 'zod';
import { FieldName, Purpose } from './catalog';
import { Duration } from './consent';
import { REQUEST_TYPES } from './request-clocks';
import { COMPLAINT_OUTCOMES, EXPORT_DELIVERIES, OBJECTION_OUTCOMES } from './request-state';
import { StorableText } from './text';

export * from './request-state';

/**
 * The data-subject request process (`request-{id}`): received, identity verified (or expired unverified), worked by
 * updates (assign, note, extend, pause/resume) and closed by `fulfil` or `refuse`; its legal clock runs beside it
 * with reminders at 50/75/90 % and an overdue escalation. Pure rules here; the workflow holds the state.
 */

export const REQUEST_CHANNELS = ['api', 'page', 'email', 'phone', 'letter', 'in-person'] as const;
export const VERIFICATION_METHODS = ['in-person-id', 'video-call', 'known-contact', 'signed-letter', 'other'] as const;
export const COMPLAINT_CATEGORIES = [
  'credit-record',
  'data-use',
  'security',
  'request-handling',
  'marketing',
  'other',
] as const;

const Id = z.uuid().transform((id) => id.toLowerCase());

/** `POST /v1/requests`: the subject by ID or external reference; texts are encrypted before the workflow starts. */
export const RequestFiling = z
  .object({
    type: z.enum(REQUEST_TYPES),
    subject: z.union([
      z.object({ id: Id }).strict(),
      z.object({ externalRef: z.string().trim().min(1).max(200) }).strict(),
    ]),
    channel: z.enum(REQUEST_CHANNELS).default('api'),
    /** When the request was received (the clock counts from here); defaults to now, never in the future. */
    receivedAt: z.iso.datetime({ offset: true }).optional(),
    details: StorableText(1, 20_000).optional(),
    /** Objection and correction: the fields the request is about. */
    fields: z.array(FieldName).min(1).max(64).optional(),
    /** Restriction: the purposes to restrict (none named: every purpose the catalog has). */
    purposes: z.array(Purpose).min(1).max(64).optional(),
    category: z.enum(COMPLAINT_CATEGORIES).optional(),
    /** Identity already verified at intake (an owner filing it): the verification step is recorded at once. */
    verification: z
      .object({ method: z.enum(VERIFICATION_METHODS), reference: StorableText(1, 500) })
      .strict()
      .optional(),
    /** Per-request overrides of the legal figures (tests; a regulator's direction). */
    clock: z
      .object({ window: Duration.optional(), maxExtension: Duration.optional(), verifyWithin: Duration.optional() })
      .strict()
      .default({}),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.type === 'objection' && !r.fields)
      ctx.addIssue({ code: 'custom', path: ['fields'], message: 'an objection names the disputed fields' });
    if (r.type === 'complaint' && !r.details)
      ctx.addIssue({ code: 'custom', path: ['details'], message: 'a complaint needs its text' });
    if (r.type === 'complaint' && !r.category)
      ctx.addIssue({ code: 'custom', path: ['category'], message: 'a complaint needs a category' });
  });
export type RequestFiling = z.infer<typeof RequestFiling>;

export const VerifyBody = z.object({ method: z.enum(VERIFICATION_METHODS), reference: StorableText(1, 500) }).strict();
export const AssignBody = z.object({ assignee: Id }).strict();
export const NoteBody = z.object({ text: StorableText(1, 20_000) }).strict();
export const ExtendBody = z.object({ by: Duration, reason: StorableText(3, 5_000).optional() }).strict();
export const PauseBody = z.object({ reason: StorableText(3, 5_000) }).strict();
/** The reason is optional in the schema so that its absence is the 422 PIPL Art. 50 asks for, not a 400. */
export const RefuseBody = z.object({ reason: StorableText(3, 20_000).optional() }).strict();
export const FulfilBody = z
  .object({
    /** Access and portability: a one-time password (returned once) or an expiring link sent to the subject. */
    delivery: z.enum(EXPORT_DELIVERIES).optional(),
    /** Correction, or an objection corrected: the new values of named fields. */
    values: z
      .record(FieldName, z.union([StorableText(0, 10_000), z.number(), z.boolean()]))
      .optional()
      .refine((v) => v === undefined || Object.keys(v).length > 0, 'name at least one field'),
    outcome: z.enum([...OBJECTION_OUTCOMES, ...COMPLAINT_OUTCOMES] as [string, ...string[]]).optional(),
    /** Objection: the subject's statement kept beside the record (征信业管理条例 Art. 16); default the filing's text. */
    statement: StorableText(1, 5_000).optional(),
    /** Complaint: the reply. */
    reply: StorableText(1, 20_000).optional(),
  })
  .strict();
export type FulfilBody = z.infer<typeof FulfilBody>;
