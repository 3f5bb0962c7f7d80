import { z } from 'zod';
import { FieldName } from './catalog';
import { isUnstorableText, UNSTORABLE_TEXT } from './text';

export const ImportMode = z.enum(['insert', 'upsert']);
export type ImportMode = z.infer<typeof ImportMode>;

export const ImportStatus = z.enum(['running', 'completed', 'failed', 'cancelled']);
export type ImportStatus = z.infer<typeof ImportStatus>;

export const ExternalRef = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\x21-\x7e]+$/, { error: 'must be printable ASCII without spaces' });

export const Jurisdiction = z.string().regex(/^[A-Z]{2}$/, { error: 'must be a two-letter code such as CN or EU' });
export const Locale = z.string().regex(/^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$/, { error: 'must be a BCP 47 tag' });

/** The dates PostgreSQL's `date` stores, narrowed to a sane range: a retention date before 1900 is a data error. */
export const RETENTION_DATE_RANGE = { min: '1900-01-01', max: '9999-12-31' } as const;

export const RetentionDate = z.iso
  .date()
  .refine((d) => d >= RETENTION_DATE_RANGE.min && d <= RETENTION_DATE_RANGE.max, {
    error: `must be a date from ${RETENTION_DATE_RANGE.min} to ${RETENTION_DATE_RANGE.max}`,
  });

/** At most this many fields on one line (contact included). */
export const MAX_FIELDS_PER_LINE = 256;

/** Scalars only: every value is encrypted or stored as one string, and masked as one. */
export const FieldValue = z.union([z.string().max(4096), z.number().finite(), z.boolean()]);
export type FieldValue = z.infer<typeof FieldValue>;

export const Contact = z
  .object({
    email: z.email().max(254).optional(),
    phone: z
      .string()
      .regex(/^\+?[0-9][0-9 ()-]{4,24}$/, { error: 'must be a phone number' })
      .optional(),
  })
  .strict();

/** One NDJSON line of an import file. */
export const SubjectLine = z
  .object({
    externalRef: ExternalRef,
    jurisdiction: Jurisdiction,
    locale: Locale.optional(),
    contact: Contact.optional(),
    retentionUntil: RetentionDate.optional(),
    fields: z
      .record(FieldName, FieldValue)
      .refine((f) => Object.keys(f).length <= MAX_FIELDS_PER_LINE, {
        error: `must hold at most ${MAX_FIELDS_PER_LINE} fields`,
      })
      .default({}),
  })
  .strict();
export type SubjectLine = z.infer<typeof SubjectLine>;

export const RejectReason = z.enum([
  'invalid_json',
  'not_an_object',
  'missing_external_ref',
  'invalid_value',
  'invalid_character',
  'invalid_field_name',
  'unknown_property',
  'duplicate_field',
  'duplicate_in_file',
  'line_too_long',
  'invalid_encoding',
  'subject_destroyed',
  'rejected_by_database',
]);
export type RejectReason = z.infer<typeof RejectReason>;

/** A rejected line: its number and why, never its content or the offending value. */
export interface ImportReject {
  line: number;
  reason: RejectReason;
  message: string;
}

export interface ImportCounts {
  imported: number;
  updated: number;
  duplicates: number;
  rejected: number;
}
export const zeroCounts = (): ImportCounts => ({ imported: 0, updated: 0, duplicates: 0, rejected: 0 });
export const addCounts = (a: ImportCounts, b: ImportCounts): ImportCounts => ({
  imported: a.imported + b.imported,
  updated: a.updated + b.updated,
  duplicates: a.duplicates + b.duplicates,
  rejected: a.rejected + b.rejected,
});

/** Where the next batch starts: a byte offset into the staged file and the 1-based line number there. */
export interface ImportCursor {
  offset: number;
  line: number;
}

export const defaultLocale = (jurisdiction: string): string => (jurisdiction === 'CN' ? 'zh-CN' : 'en');

/** A line's values as one flat field map: contact details are the `email` and `phone` fields. */
export type ParsedLine =
  | { ok: true; subject: SubjectLine & { locale: string }; values: Map<string, FieldValue> }
  | { ok: false; reason: RejectReason; message: string };

const SAFE_SEGMENT = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

// A key that is not a valid field name may itself be data (a name used as a key): never quote it.
const pathOf = (path: readonly PropertyKey[]): string =>
  path
    .map((p) =>
      typeof p === 'number' || (SAFE_SEGMENT.test(String(p)) && !RESERVED_FIELD_NAMES.has(String(p)))
        ? String(p)
        : '<key>',
    )
    .join('.') || '(line)';

const describeIssue = (issue: z.core.$ZodIssue): { reason: RejectReason; message: string } => {
  const path = pathOf(issue.path);
  if (issue.code === 'unrecognized_keys') {
    return { reason: 'unknown_property', message: `${path}: unknown propert${issue.keys.length > 1 ? 'ies' : 'y'}` };
  }
  // zod's messages name the expected type or format, never the input value.
  return { reason: 'invalid_value', message: `${path}: ${issue.message}` };
};

const reject = (reason: RejectReason, message: string): ParsedLine => ({ ok: false, reason, message });

/** Field names that would reach an object's prototype machinery instead of a field. */
export const RESERVED_FIELD_NAMES: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

// In valid UTF-8 JSON, a NUL or a surrogate can only come from a \u escape.
const ESCAPED_SUSPECT = /\\u(?:0000|[dD][89a-fA-F])/;

/** Finds a key or string anywhere in a parsed line that PostgreSQL or UTF-8 cannot hold; returns its safe path. */
const unstorableAt = (value: unknown, path: string[], depth = 0): string | undefined => {
  if (typeof value === 'string') return isUnstorableText(value) ? pathOf(path) : undefined;
  if (value === null || typeof value !== 'object' || depth > 8) return undefined;
  for (const [key, inner] of Object.entries(value)) {
    if (isUnstorableText(key)) return pathOf([...path, '<key>']);
    const found = unstorableAt(inner, [...path, key], depth + 1);
    if (found) return found;
  }
  return undefined;
};

/** Parses and validates one line. The result never carries a rejected line's content. */
export const parseSubjectLine = (text: string): ParsedLine => {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return reject('invalid_json', 'line is not valid JSON');
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    return reject('not_an_object', 'line is not a JSON object');
  }
  // In valid UTF-8 JSON, a NUL or a surrogate can only come from a \u escape: walk the line only then.
  const unstorable = ESCAPED_SUSPECT.test(text) ? unstorableAt(json, []) : undefined;
  if (unstorable) {
    return reject('invalid_character', `${unstorable}: ${UNSTORABLE_TEXT}`);
  }
  if (!('externalRef' in json) || json.externalRef === null || json.externalRef === '') {
    return reject('missing_external_ref', 'externalRef is missing');
  }
  // zod copies a record into a plain object, where `__proto__` would vanish: refuse such names first.
  const fields: unknown = 'fields' in json ? json.fields : undefined;
  if (fields !== null && typeof fields === 'object' && Object.keys(fields).some((k) => RESERVED_FIELD_NAMES.has(k))) {
    return reject('invalid_field_name', 'fields.<key>: __proto__, constructor and prototype are not field names');
  }
  const parsed = SubjectLine.safeParse(json);
  if (!parsed.success) {
    const { reason, message } = describeIssue(parsed.error.issues[0]!);
    return reject(reason, message);
  }
  const subject = parsed.data;
  const values = new Map<string, FieldValue>(Object.entries(subject.fields));
  for (const [field, value] of Object.entries(subject.contact ?? {})) {
    if (value === undefined) continue;
    if (values.has(field)) return reject('duplicate_field', `${field} appears both in contact and in fields`);
    values.set(field, value);
  }
  return { ok: true, subject: { ...subject, locale: subject.locale ?? defaultLocale(subject.jurisdiction) }, values };
};

export interface SubjectImportInput {
  importId: string;
  mode: ImportMode;
  /** Who asked: a user ID, or `cli:<os user>`. */
  requestedBy: string;
  /** Non-blank lines in the staged file, counted while staging. */
  totalLines: number;
  stagedBytes: number;
  /** Lines per batch: each batch commits in one transaction. */
  batchLines?: number;
  /** Batches per activity call; the activity heartbeats its byte offset after each one. */
  batchesPerActivity?: number;
  /** How long a batch activity may go without a heartbeat (a duration such as `10 seconds`; default 10 s). */
  batchHeartbeatTimeout?: string;
  /** Continue-as-new after this many batches, so the history stays bounded. */
  batchesPerRun?: number;
  /** Set by continue-as-new only. */
  resume?: { cursor: ImportCursor; counts: ImportCounts };
}

export const IMPORT_DEFAULTS = { batchLines: 1000, batchesPerActivity: 20, batchesPerRun: 400 } as const;

/** The workflow's query: the live counters, cursor and status. */
export const IMPORT_PROGRESS_QUERY = 'progress';

export interface ImportProgress {
  importId: string;
  status: ImportStatus;
  total: number;
  counts: ImportCounts;
  cursor: ImportCursor;
  stagedBytes: number;
}

export interface ImportReport extends ImportCounts {
  importId: string;
  status: ImportStatus;
  total: number;
  unclassifiedFields: string[];
}
