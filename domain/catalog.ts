import { z } from 'zod';

export const Classification = z.enum(['general', 'personal', 'sensitive']);
export type Classification = z.infer<typeof Classification>;

/** How a value is shown when it is not revealed; see domain/masking.ts. */
export const MaskStyle = z.enum(['none', 'name', 'phone', 'email', 'tail4', 'prefix3', 'full']);
export type MaskStyle = z.infer<typeof MaskStyle>;

export const FieldName = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, { error: 'must be 1-64 characters of [A-Za-z0-9_], starting with a letter' });
export type FieldName = z.infer<typeof FieldName>;

export const Purpose = z
  .string()
  .regex(/^[a-z][a-z0-9-]{1,63}$/, { error: 'must be 2-64 characters of [a-z0-9-], starting with a letter' });
export type Purpose = z.infer<typeof Purpose>;

/** ISO 8601 duration in whole years, months or days (P10Y, P6M, P90D): how long a value may be kept. */
export const RetentionPeriod = z.string().regex(/^P(?:\d+Y)?(?:\d+M)?(?:\d+D)?$/, {
  error: 'must be an ISO 8601 duration such as P10Y, P6M or P90D',
});

/** How a blind-indexed value is normalised before hashing, so equal values in other spellings match. */
export const IndexNormalisation = z.enum(['email', 'phone', 'idNumber', 'trim']);
export type IndexNormalisation = z.infer<typeof IndexNormalisation>;

export const CatalogEntry = z
  .object({
    classification: Classification,
    /** The purposes a value may be revealed for. */
    purposes: z.array(Purpose).min(1),
    retention: RetentionPeriod,
    /** A date field of the same subject the retention counts from (征信业管理条例 Art. 16: 5 years after the adverse event ends). */
    retentionFrom: FieldName.optional(),
    mask: MaskStyle.optional(),
    /** Keeps a keyed HMAC of the normalized value, for equality search without decrypting. */
    blindIndex: z.boolean().default(false),
    /** The normalisation of the blind index (default `trim`): emails lower-cased, phones digits only, ID numbers upper-case without spaces. */
    normalise: IndexNormalisation.optional(),
  })
  .strict();
export type CatalogEntry = z.infer<typeof CatalogEntry>;

/**
 * Why a purpose may be processed at all: PIPL Art. 13 / GDPR Art. 6(1). Only `consent` purposes are gated by
 * the subject's consent; a purpose restriction (a withdrawal) blocks a purpose whatever its basis.
 */
export const LEGAL_BASES = [
  'consent',
  'contract',
  'legal-obligation',
  'legitimate-interest',
  'vital-interest',
  'public-task',
] as const;
export const LegalBasis = z.enum(LEGAL_BASES);
export type LegalBasis = z.infer<typeof LegalBasis>;

export const PurposeEntry = z.object({ legalBasis: LegalBasis }).strict();
export type PurposeEntry = z.infer<typeof PurposeEntry>;

/** Each purpose the entries name, with the fields that name it (`unclassified` for the fallback entry). */
const purposeUsers = (catalog: {
  fields: Record<string, CatalogEntry>;
  unclassified: CatalogEntry;
}): Map<string, string[]> => {
  const users = new Map<string, string[]>();
  const entries: [string, CatalogEntry][] = [...Object.entries(catalog.fields), ['unclassified', catalog.unclassified]];
  for (const [name, e] of entries) for (const p of e.purposes) users.set(p, [...(users.get(p) ?? []), name]);
  return users;
};

const UnclassifiedEntry = CatalogEntry.refine((e) => e.classification !== 'general', {
  error: 'unclassified fields must not be stored in plain text',
});

export const Catalog = z
  .object({
    /** Every purpose a field (or `unclassified`) names, with its legal basis. */
    purposes: z.record(Purpose, PurposeEntry),
    fields: z.record(FieldName, CatalogEntry),
    /** Applied to fields the catalog does not name: encrypted as personal and reported as unclassified. */
    unclassified: UnclassifiedEntry,
  })
  .strict()
  .superRefine((catalog, ctx) => {
    // A purpose without a stated basis is a configuration error, not silently consent (or anything else).
    for (const [purpose, fields] of purposeUsers(catalog)) {
      if (Object.hasOwn(catalog.purposes, purpose)) continue;
      ctx.addIssue({
        code: 'custom',
        path: ['purposes', purpose],
        message: `purpose ${purpose} (named by ${fields.join(', ')}) has no legal basis: add "purposes": { "${purpose}": { "legalBasis": one of ${LEGAL_BASES.join(', ')} } }`,
      });
    }
  });
export type Catalog = z.infer<typeof Catalog>;

/** An operator's override file: entries here replace or add to the defaults, purpose by purpose and field by field. */
export const CatalogOverride = z
  .object({
    purposes: z.record(Purpose, PurposeEntry).default({}),
    fields: z.record(FieldName, CatalogEntry).default({}),
    unclassified: UnclassifiedEntry.optional(),
  })
  .strict();
export type CatalogOverride = z.infer<typeof CatalogOverride>;

const entry = (
  classification: Classification,
  purposes: Purpose[],
  retention: string,
  extra: Partial<Pick<CatalogEntry, 'mask' | 'blindIndex' | 'normalise'>> = {},
): CatalogEntry => ({ classification, purposes, retention, blindIndex: false, ...extra });

const basis = (legalBasis: LegalBasis): PurposeEntry => ({ legalBasis });

const CUSTOMER = ['customer-service', 'transfer-notice', 'consent-collection'];
const CONTACT = [...CUSTOMER, 'marketing'];
const CREDIT = ['credit-assessment', 'regulatory-reporting'];

/** Defaults for a transferred credit-information customer file (PIPL Art. 28 marks the sensitive ones). */
export const defaultCatalog: Catalog = {
  // The defaults' reasons are in docs/decisions.md ("Legal basis per purpose"); operators override them.
  purposes: {
    'customer-service': basis('contract'),
    'debt-collection': basis('contract'),
    'credit-assessment': basis('contract'),
    'transfer-notice': basis('legal-obligation'),
    // PIPL Art. 57, GDPR Art. 34: telling subjects of a breach is a duty, not a choice (the incident's notices).
    'breach-notice': basis('legal-obligation'),
    'consent-collection': basis('legal-obligation'),
    'identity-verification': basis('legal-obligation'),
    'regulatory-reporting': basis('legal-obligation'),
    'data-governance': basis('legal-obligation'),
    marketing: basis('consent'),
    analytics: basis('consent'),
  },
  fields: {
    name: entry('personal', [...CONTACT, 'identity-verification'], 'P5Y', { mask: 'name' }),
    phone: entry('personal', CONTACT, 'P5Y', { mask: 'phone', blindIndex: true, normalise: 'phone' }),
    email: entry('personal', CONTACT, 'P5Y', { mask: 'email', blindIndex: true, normalise: 'email' }),
    address: entry('personal', ['customer-service', 'debt-collection'], 'P5Y', { mask: 'prefix3' }),
    idNumber: entry('sensitive', ['identity-verification', ...CREDIT], 'P5Y', {
      mask: 'tail4',
      blindIndex: true,
      normalise: 'idNumber',
    }),
    bankAccount: entry('sensitive', ['debt-collection', 'credit-assessment'], 'P5Y', { mask: 'tail4' }),
    creditScore: entry('sensitive', CREDIT, 'P5Y', { mask: 'full' }),
    creditHistory: entry('sensitive', CREDIT, 'P5Y', { mask: 'full' }),
    loanBalance: entry('sensitive', [...CREDIT, 'debt-collection'], 'P5Y', { mask: 'full' }),
    city: entry('general', ['analytics', 'customer-service'], 'P10Y', { mask: 'none' }),
    segment: entry('general', ['analytics', 'customer-service'], 'P10Y', { mask: 'none' }),
    customerSince: entry('general', ['analytics', 'customer-service'], 'P10Y', { mask: 'none' }),
  },
  unclassified: entry('personal', ['data-governance'], 'P1Y', { mask: 'full' }),
};

export const mergeCatalog = (base: Catalog, override: CatalogOverride): Catalog => ({
  purposes: { ...base.purposes, ...override.purposes },
  fields: { ...base.fields, ...override.fields },
  unclassified: override.unclassified ?? base.unclassified,
});

export interface FieldClass {
  entry: CatalogEntry;
  /** False for a field the catalog does not name. */
  classified: boolean;
}

export const classifyField = (catalog: Catalog, field: string): FieldClass => {
  const known = Object.hasOwn(catalog.fields, field) ? catalog.fields[field] : undefined;
  return known ? { entry: known, classified: true } : { entry: catalog.unclassified, classified: false };
};

export const isEncrypted = (classification: Classification): boolean => classification !== 'general';

export const catalogPurposes = (catalog: Catalog): Set<string> =>
  new Set([...Object.values(catalog.fields), catalog.unclassified].flatMap((e) => e.purposes));

/** The legal basis the catalog states for a purpose; undefined for a purpose it does not know. */
export const legalBasisOf = (catalog: Catalog, purpose: string): LegalBasis | undefined =>
  Object.hasOwn(catalog.purposes, purpose) ? catalog.purposes[purpose]!.legalBasis : undefined;

/** The fields whose values are searchable through the blind index. */
export const blindIndexedFields = (catalog: Catalog): string[] =>
  Object.entries(catalog.fields)
    .filter(([, e]) => e.blindIndex)
    .map(([name]) => name);

/** The form a blind-indexed value is compared in: always NFC and trimmed, then per the entry's normalisation. */
export const normaliseForIndex = (normalise: IndexNormalisation | undefined, value: string): string => {
  const trimmed = value.normalize('NFC').trim();
  switch (normalise) {
    case 'email':
      return trimmed.toLowerCase();
    case 'phone':
      return trimmed.replace(/\D/g, '');
    case 'idNumber':
      return trimmed.replace(/\s/g, '').toUpperCase();
    default:
      return trimmed;
  }
};

/**
 * Names a line may use for a field the catalog does not know. The name reaches the import report (and
 * the field row), so it must look like a name, not like data: short, and without long digit runs that
 * could be a phone, ID or account number.
 */
export const UNCLASSIFIED_NAME_POLICY = { maxLength: 32, maxDigits: 4 } as const;

/** Why an unclassified field name breaks the policy, or undefined; never quotes the name. */
export const unclassifiedNameProblem = (name: string): string | undefined => {
  if (name.length > UNCLASSIFIED_NAME_POLICY.maxLength) {
    return `an unclassified field name is longer than ${UNCLASSIFIED_NAME_POLICY.maxLength} characters`;
  }
  if ((name.match(/[0-9]/g)?.length ?? 0) > UNCLASSIFIED_NAME_POLICY.maxDigits) {
    return `an unclassified field name has more than ${UNCLASSIFIED_NAME_POLICY.maxDigits} digits`;
  }
  return undefined;
};
