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
    mask: MaskStyle.optional(),
    /** Keeps a keyed HMAC of the normalized value, for equality search without decrypting. */
    blindIndex: z.boolean().default(false),
    /** The normalisation of the blind index (default `trim`): emails lower-cased, phones digits only, ID numbers upper-case without spaces. */
    normalise: IndexNormalisation.optional(),
  })
  .strict();
export type CatalogEntry = z.infer<typeof CatalogEntry>;

export const Catalog = z
  .object({
    fields: z.record(FieldName, CatalogEntry),
    /** Applied to fields the catalog does not name: encrypted as personal and reported as unclassified. */
    unclassified: CatalogEntry.refine((e) => e.classification !== 'general', {
      error: 'unclassified fields must not be stored in plain text',
    }),
  })
  .strict();
export type Catalog = z.infer<typeof Catalog>;

/** An operator's override file: entries here replace or add to the defaults, field by field. */
export const CatalogOverride = z
  .object({
    fields: z.record(FieldName, CatalogEntry).default({}),
    unclassified: Catalog.shape.unclassified.optional(),
  })
  .strict();
export type CatalogOverride = z.infer<typeof CatalogOverride>;

const entry = (
  classification: Classification,
  purposes: Purpose[],
  retention: string,
  extra: Partial<Pick<CatalogEntry, 'mask' | 'blindIndex' | 'normalise'>> = {},
): CatalogEntry => ({ classification, purposes, retention, blindIndex: false, ...extra });

const CUSTOMER = ['customer-service', 'transfer-notice', 'consent-collection'];
const CREDIT = ['credit-assessment', 'regulatory-reporting'];

/** Defaults for a transferred credit-information customer file (PIPL Art. 28 marks the sensitive ones). */
export const defaultCatalog: Catalog = {
  fields: {
    name: entry('personal', [...CUSTOMER, 'identity-verification'], 'P5Y', { mask: 'name' }),
    phone: entry('personal', CUSTOMER, 'P5Y', { mask: 'phone', blindIndex: true, normalise: 'phone' }),
    email: entry('personal', CUSTOMER, 'P5Y', { mask: 'email', blindIndex: true, normalise: 'email' }),
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
