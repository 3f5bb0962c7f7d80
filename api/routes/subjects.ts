import { z } from '@hono/zod-openapi';
import { Classification, LegalBasis, Purpose } from '../../domain/catalog';
import { CONSENT_STATUSES } from '../../domain/consent';
import { CONSENT_REFUSAL_CODES } from '../../domain/consent-gate';
import type { Services } from '../../runtime/services';
import { defineRoute, endpoint, jsonResponse, v1Resource } from '../auth';
import { ApiError, problemResponse } from '../errors';
import { IdParam } from '../params';
import { SEARCH_FIELDS, subjectLookup } from '../subject-lookup';

const FieldView = z
  .object({
    classification: Classification,
    classified: z.boolean().openapi({ description: 'False for a field the catalog did not name at import' }),
    value: z
      .union([z.string(), z.number(), z.boolean()])
      .nullable()
      .openapi({ description: 'Masked unless revealed; null once the subject was crypto-shredded' }),
    masked: z.boolean(),
    underObjection: z
      .literal(true)
      .optional()
      .openapi({ description: 'Disputed by the subject (征信业管理条例 Art. 25)' }),
  })
  .openapi('SubjectField');

const SubjectObjection = z
  .object({
    requestId: z.uuid(),
    field: z.string(),
    status: z.enum(['under-objection', 'corrected', 'upheld', 'unresolved']),
    markedAt: z.iso.datetime(),
    resolvedAt: z.iso.datetime().nullable(),
    statement: z
      .string()
      .nullable()
      .openapi({ description: 'The subject’s statement kept with the record after upheld or unresolved (Art. 16)' }),
  })
  .openapi('SubjectObjection');

const SubjectConsent = z
  .object({
    purpose: z.string(),
    legalBasis: LegalBasis.nullable().openapi({
      description: 'The catalog’s legal basis for the purpose; null for a purpose the catalog does not name',
    }),
    consentId: z.uuid().nullable(),
    status: z
      .enum(CONSENT_STATUSES)
      .nullable()
      .openapi({ description: 'The latest consent’s status; null when only a restriction remains' }),
    validUntil: z.iso.datetime().nullable(),
    restricted: z.boolean().openapi({ description: 'Processing for this purpose is restricted (consent withdrawn)' }),
    refusal: z
      .enum(CONSENT_REFUSAL_CODES)
      .nullable()
      .openapi({ description: 'The problem code a reveal for this purpose gets now; null when it is allowed' }),
  })
  .openapi('SubjectConsent');

const Subject = z
  .object({
    id: z.uuid(),
    externalRef: z.string(),
    jurisdiction: z.string(),
    locale: z.string(),
    status: z.enum(['active', 'restricted', 'destroyed']),
    retentionUntil: z.string().nullable(),
    legalHold: z.boolean(),
    importId: z.string().nullable(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
    fields: z.record(z.string(), FieldView),
    consents: z.array(SubjectConsent).openapi({
      description: 'Each purpose the subject has a consent or a restriction for, with its legal basis',
    }),
    objections: z.array(SubjectObjection).openapi({ description: 'Credit-record objections (data-subject requests)' }),
  })
  .openapi('Subject');

const RevealedSubject = Subject.extend({
  reveal: z
    .object({ purpose: z.string(), revealed: z.array(z.string()), withheld: z.array(z.string()) })
    .optional()
    .openapi({ description: 'Present on a reveal: which fields the purpose covered' }),
}).openapi('SubjectWithReveal');

const SubjectList = z.object({ items: z.array(Subject) }).openapi('SubjectList');

const RevealQuery = z
  .object({ purpose: Purpose.meta({ description: 'A purpose from the data catalog; it decides which fields' }) })
  .strict();

const LookupQuery = z
  .object({ externalRef: z.string().min(1).max(128).openapi({ description: 'The reference from the source system' }) })
  .strict();

const SearchQuery = z
  .object({
    phone: z.string().min(1).max(64).optional(),
    idNumber: z.string().min(1).max(64).optional(),
    email: z.string().min(1).max(254).optional(),
    purpose: Purpose.meta({ description: "A catalog purpose the searched field's entry names" }),
  })
  .strict()
  .refine((q) => SEARCH_FIELDS.filter((f) => q[f] !== undefined).length === 1, {
    error: `give exactly one of ${SEARCH_FIELDS.join(', ')}`,
  });

const getSubject = defineRoute({
  roles: ['owner', 'auditor'],
  method: 'get',
  path: '/subjects/{id}',
  tags: ['subjects'],
  summary: 'A subject with classification-aware masked values (GET …/reveal decrypts, for owners)',
  // No query parameters: an old `?reveal=1` must fail loudly rather than quietly return masked values.
  request: { params: IdParam, query: z.object({}).strict() },
  responses: { 200: jsonResponse(Subject, 'The subject'), 404: problemResponse('No such subject') },
});

const revealSubject = defineRoute({
  roles: ['owner'],
  method: 'get',
  path: '/subjects/{id}/reveal',
  tags: ['subjects'],
  summary:
    'Decrypt the fields the purpose covers, if its legal basis and the subject’s consent allow; audited before anything is decrypted',
  request: { params: IdParam, query: RevealQuery },
  responses: {
    200: jsonResponse(RevealedSubject, 'The subject, with the covered fields in clear'),
    403: problemResponse(
      'Requires the role owner; or the consent gate refused the purpose (audited, nothing decrypted): ' +
        'the purpose is restricted for the subject (consent-withdrawn), or it is consent-based and the ' +
        'latest consent is not granted (consent-withdrawn, consent-denied, consent-not-granted, consent-expired, ' +
        'consent-requested) or lacks the separate consent a sensitive field needs (consent-sensitive-not-granted); ' +
        'or the purpose reaches a sensitive field and the owner has no live reveal grant for it (access-grant-required)',
    ),
    404: problemResponse('No such subject'),
  },
});

const lookupSubjects = defineRoute({
  roles: ['owner', 'auditor'],
  method: 'get',
  path: '/subjects',
  tags: ['subjects'],
  summary: 'Find subjects by their external reference',
  request: { query: LookupQuery },
  responses: { 200: jsonResponse(SubjectList, 'Matching subjects, masked') },
});

const searchSubjects = defineRoute({
  roles: ['owner'],
  method: 'get',
  path: '/subjects/search',
  tags: ['subjects'],
  summary:
    'Find subjects by phone, idNumber or email through the keyed blind index, for a purpose; audited, rate-limited per API key',
  request: { query: SearchQuery },
  responses: {
    200: jsonResponse(SubjectList, 'Matching subjects, masked'),
    429: problemResponse('The API key used its search budget; Retry-After says when the next search is allowed'),
  },
});

export const subjectRoutes = (services: Services) => {
  const subjects = subjectLookup(services);
  return v1Resource(
    // Before GET /subjects/{id}, which would otherwise take `search` for an ID.
    endpoint(searchSubjects, async (c) => {
      const { purpose, ...byField } = c.req.valid('query');
      const field = SEARCH_FIELDS.find((f) => byField[f] !== undefined)!;
      return c.json({ items: await subjects.search(c.var.principal, field, byField[field]!, purpose) }, 200);
    }),
    endpoint(lookupSubjects, async (c) => {
      const { externalRef } = c.req.valid('query');
      return c.json({ items: await subjects.findByExternalRef(externalRef) }, 200);
    }),
    endpoint(getSubject, async (c) => {
      const { id } = c.req.valid('param');
      const subject = await subjects.get(id);
      if (!subject) throw ApiError.notFound(`subject ${id}`);
      return c.json(subject, 200);
    }),
    endpoint(revealSubject, async (c) => {
      const { id } = c.req.valid('param');
      return c.json(await subjects.reveal(c.var.principal, id, c.req.valid('query').purpose), 200);
    }),
  );
};
