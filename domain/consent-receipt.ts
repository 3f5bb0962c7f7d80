import { z } from 'zod';
import { FieldName, Purpose, RetentionPeriod, type Catalog } from './catalog';
import { NoticeHandler, NoticeLocale, PreviousHandler } from './notice';

/**
 * A consent receipt: the consent record of ISO/IEC TS 27560:2023 (header, processing, parties, events)
 * in the field names of the Kantara Consent Receipt v1.1 where they exist. It carries references,
 * categories and hashes only: the subject is `subject:<uuid>` (a random ID, pseudonymous), the notice
 * is cited by ID, version, language and SHA-256, and no personal value appears anywhere.
 */
export const RECEIPT_SCHEMA_VERSION = 'custodian-consent-receipt/1';

export const SubjectRef = z.string().regex(/^subject:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, {
  error: 'must be subject:<uuid> (lower case): a reference, never a personal value',
});

/** ISO 3166-1 alpha-2, optionally with a subdivision (CN, CN-SH). */
export const Jurisdiction = z.string().regex(/^[A-Z]{2}(?:-[A-Z0-9]{1,3})?$/, {
  error: 'must be an ISO 3166 code such as CN or CN-SH',
});

export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, { error: 'must be 64 lower-case hex digits' });

export const COLLECTION_METHODS = ['web-link', 'on-behalf'] as const;
export const CollectionMethod = z.enum(COLLECTION_METHODS);
export type CollectionMethod = z.infer<typeof CollectionMethod>;

/** `sensitive-given` / `sensitive-refused`: the separate answer for sensitive personal information (PIPL Art. 29). */
export const CONSENT_EVENT_TYPES = [
  'requested',
  'given',
  'refused',
  'sensitive-given',
  'sensitive-refused',
  'withdrawn',
  'expired',
  'renewed',
] as const;
export const ConsentEventType = z.enum(CONSENT_EVENT_TYPES);
export type ConsentEventType = z.infer<typeof ConsentEventType>;

const Instant = z.iso.datetime({ offset: false });

export const ConsentEvent = z.object({ type: ConsentEventType, at: Instant, validUntil: Instant.optional() }).strict();
export type ConsentEvent = z.infer<typeof ConsentEvent>;

export const ReceiptPurpose = z
  .object({
    purpose: Purpose,
    /** Catalog field names (categories of personal information), never values. */
    piCategories: z.array(FieldName),
    sensitive: z.boolean(),
    sensitiveCategories: z.array(FieldName),
    /** The longest retention of the categories, as an ISO 8601 duration. */
    retention: RetentionPeriod,
    legalBasis: z.literal('consent'),
  })
  .strict();
export type ReceiptPurpose = z.infer<typeof ReceiptPurpose>;

/** A party that receives the data (27560 parties; Kantara thirdPartyDisclosure). */
export const Recipient = z
  .object({ name: z.string().min(1).max(200), contact: z.string().min(1).max(320).optional() })
  .strict();

export const ConsentReceipt = z
  .object({
    schemaVersion: z.literal(RECEIPT_SCHEMA_VERSION),
    receiptId: z.uuid(),
    /** The consent record's ID. */
    recordId: z.uuid(),
    issuedAt: Instant,
    subjectRef: SubjectRef,
    jurisdiction: Jurisdiction,
    notice: z
      .object({ id: z.uuid(), version: z.number().int().min(1), language: NoticeLocale, textSha256: Sha256Hex })
      .strict(),
    purposes: z.array(ReceiptPurpose).min(1),
    /** Where the data is stored (a jurisdiction code): credit data stays in China. */
    storageLocation: Jurisdiction,
    recipients: z.array(Recipient),
    /** The new handler, from the notice. */
    controller: NoticeHandler,
    /** The handler the data came from, for a transfer; null otherwise. */
    previousController: PreviousHandler.nullable(),
    collectionMethod: CollectionMethod,
    /** Withdrawal goes the way consent came: the same link (no capability token), or on the subject's behalf. */
    withdrawalMethod: z.object({ method: CollectionMethod, uri: z.url().max(2048).optional() }).strict(),
    events: z.array(ConsentEvent).min(1),
  })
  .strict();
export type ConsentReceipt = z.infer<typeof ConsentReceipt>;

/** What the API and `custodian verify-receipt` check: the receipt, its Ed25519 signature and the key. */
export const SignedReceipt = z
  .object({
    receipt: z.unknown(),
    algorithm: z.literal('Ed25519'),
    /** base64, over the canonical JSON of `receipt`. */
    signature: z.string().max(200),
    /** The signing key's ID (runtime/keyring.ts); the verifier checks it names `publicKey`. */
    keyId: z.string().min(1).max(64),
    /** SPKI PEM of the signing key; a verifier that wants to know who signed passes its own copy. */
    publicKey: z.string().max(1000),
  })
  .strict();
export type SignedReceipt = Omit<z.infer<typeof SignedReceipt>, 'receipt'> & { receipt: ConsentReceipt };

/** The facts of a consent a receipt is built from: IDs, codes and times, no personal values. */
export interface ReceiptFacts {
  receiptId: string;
  consentId: string;
  subjectId: string;
  jurisdiction: string;
  issuedAt: Date;
  notice: {
    id: string;
    version: number;
    purpose: string;
    textSha256: string;
    handler: NoticeHandler;
    previousHandler?: PreviousHandler | null;
  };
  language: NoticeLocale;
  /** The purposes consented to; the notice's purpose when omitted. */
  purposes?: string[];
  storageLocation: string;
  recipients?: { name: string; contact?: string }[];
  collectionMethod: CollectionMethod;
  /** The consent page (without any token); withdrawal uses the same link. */
  withdrawalUri?: string;
  events: { type: ConsentEventType; at: Date; validUntil?: Date }[];
}

/** Days in an ISO duration, for ordering only (a year as 366 days, a month as 31). */
const upperDays = (period: string): number => {
  const m = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?$/.exec(period);
  return m ? Number(m[1] ?? 0) * 366 + Number(m[2] ?? 0) * 31 + Number(m[3] ?? 0) : 0;
};

/** The catalog's categories for a purpose: the fields whose entries name it, the sensitive ones, the longest retention. */
export const receiptPurpose = (catalog: Catalog, purpose: string): ReceiptPurpose => {
  const fields = Object.entries(catalog.fields).filter(([, e]) => e.purposes.includes(purpose));
  const sensitiveCategories = fields.filter(([, e]) => e.classification === 'sensitive').map(([name]) => name);
  const retention = fields
    .map(([, e]) => e.retention)
    .reduce<string | undefined>((a, b) => (a === undefined || upperDays(b) > upperDays(a) ? b : a), undefined);
  return {
    purpose,
    piCategories: fields.map(([name]) => name).sort(),
    sensitive: sensitiveCategories.length > 0,
    sensitiveCategories: sensitiveCategories.sort(),
    retention: retention ?? catalog.unclassified.retention,
    legalBasis: 'consent',
  };
};

/** The receipt of a consent, validated against the schema (so a wrong fact fails here, not at a verifier). */
export const buildReceipt = (catalog: Catalog, f: ReceiptFacts): ConsentReceipt =>
  ConsentReceipt.parse({
    schemaVersion: RECEIPT_SCHEMA_VERSION,
    receiptId: f.receiptId.toLowerCase(),
    recordId: f.consentId.toLowerCase(),
    issuedAt: f.issuedAt.toISOString(),
    subjectRef: `subject:${f.subjectId.toLowerCase()}`,
    jurisdiction: f.jurisdiction,
    notice: { id: f.notice.id, version: f.notice.version, language: f.language, textSha256: f.notice.textSha256 },
    purposes: (f.purposes ?? [f.notice.purpose]).map((p) => receiptPurpose(catalog, p)),
    storageLocation: f.storageLocation,
    recipients: f.recipients ?? [],
    controller: f.notice.handler,
    previousController: f.notice.previousHandler ?? null,
    collectionMethod: f.collectionMethod,
    withdrawalMethod: { method: f.collectionMethod, ...(f.withdrawalUri ? { uri: f.withdrawalUri } : {}) },
    events: f.events.map((e) => ({
      type: e.type,
      at: e.at.toISOString(),
      ...(e.validUntil ? { validUntil: e.validUntil.toISOString() } : {}),
    })),
  });
