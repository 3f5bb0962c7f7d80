import { z } from 'zod';
import { Duration } from './consent';
import type { NotificationLocale } from './notification-templates';

/**
 * The data-quality check (`quality-check-{id}`, weekly): pure validators of the values a transferred credit file
 * holds, the thresholds a report is judged by, and the report's shape. Reports hold counts only, never a value.
 */

/** GB 11643-1999: weights of the first 17 digits, and the check character for (sum mod 11). */
const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK = '10X98765432';
/** The oldest birth year a living subject's ID number may plausibly carry. */
const OLDEST_BIRTH_YEAR = 1900;

const isCalendarDate = (y: number, m: number, d: number): boolean => {
  const date = new Date(Date.UTC(y, m - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
};

/** The GB 11643 check character of the first 17 digits. */
export const prcIdCheckCharacter = (first17: string): string => {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(first17[i]) * ID_WEIGHTS[i]!;
  return ID_CHECK[sum % 11]!;
};

/**
 * A PRC resident identity number (18 characters): a region code that does not start with 0, a birth date that is
 * a real calendar date between 1900 and `today`, and the GB 11643 check character (X upper or lower case).
 */
export const isValidPrcResidentId = (value: string, today: Date): boolean => {
  const id = value.trim().toUpperCase();
  if (!/^[1-9]\d{16}[0-9X]$/.test(id)) return false;
  const y = Number(id.slice(6, 10));
  const m = Number(id.slice(10, 12));
  const d = Number(id.slice(12, 14));
  if (y < OLDEST_BIRTH_YEAR || !isCalendarDate(y, m, d)) return false;
  if (Date.UTC(y, m - 1, d) > today.getTime()) return false;
  return prcIdCheckCharacter(id.slice(0, 17)) === id[17];
};

/**
 * A phone number: separators (space, dash, dot, parentheses) ignored, an optional `+`, 8-15 digits (E.164); a
 * mainland China mobile number (11 digits from 1, optionally after 86) must start 13-19.
 */
export const isValidPhone = (value: string): boolean => {
  const compact = value.trim().replace(/[\s\-.()]/g, '');
  if (!/^\+?\d{8,15}$/.test(compact)) return false;
  const digits = compact.replace(/^\+/, '');
  const cnMobile = digits.length === 13 && digits.startsWith('86') ? digits.slice(2) : digits;
  if (cnMobile.length === 11 && cnMobile.startsWith('1')) return /^1[3-9]\d{9}$/.test(cnMobile);
  return compact.startsWith('+') || digits.length >= 8;
};

/** An e-mail address: one `@`, a local part and a dotted domain without spaces, at most 254 characters. */
export const isValidEmail = (value: string): boolean => {
  const v = value.trim();
  return v.length <= 254 && /^[^\s@]{1,64}@[^\s@.]+(\.[^\s@.]+)*\.[A-Za-z]{2,}$/.test(v);
};

/** An integer credit score within the configured range (inclusive). */
export const isValidCreditScore = (value: string, range: { min: number; max: number }): boolean => {
  const v = value.trim();
  if (!/^-?\d+(\.0+)?$/.test(v)) return false;
  const n = Number(v);
  return n >= range.min && n <= range.max;
};

/** A calendar date `YYYY-MM-DD` (optionally with a time) that is not after `today`. */
export const isValidPastDate = (value: string, today: Date): boolean => {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$/.exec(value.trim());
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return isCalendarDate(y, mo, d) && Date.UTC(y, mo - 1, d) <= today.getTime();
};

export const VALIDATORS = ['phone', 'email', 'prcResidentId', 'creditScore', 'pastDate'] as const;
export const Validator = z.enum(VALIDATORS);
export type Validator = z.infer<typeof Validator>;

const Ratio = z.number().min(0).max(1);

/** What a report is judged by; every field has a default, so `{}` is a valid configuration. */
export const QualityThresholds = z
  .object({
    /** Which validator checks which catalog field. */
    validators: z.record(z.string(), Validator).default({
      phone: 'phone',
      email: 'email',
      idNumber: 'prcResidentId',
      creditScore: 'creditScore',
      customerSince: 'pastDate',
    }),
    /** Fields every subject should have, with the least share of subjects that must have them. */
    completeness: z.record(z.string(), Ratio).default({ name: 0.99, idNumber: 0.99, phone: 0.95 }),
    /** The largest share of a field's values that may be invalid. */
    maxInvalidRatio: Ratio.default(0.01),
    /** The largest share of a blind-indexed field's values that may be shared with another subject. */
    maxDuplicateRatio: Ratio.default(0.001),
    /** A subject not updated for this long is stale (default P365D). */
    staleAfter: Duration.default(365 * 24 * 3600_000),
    /** The largest share of subjects that may be stale. */
    maxStaleRatio: Ratio.default(0.5),
    /** The largest number of consistency problems (e.g. a granted consent on a destroyed subject). */
    maxInconsistencies: z.number().int().min(0).default(0),
    creditScore: z
      .object({ min: z.number(), max: z.number() })
      .strict()
      .refine((r) => r.min <= r.max, { error: 'min must not exceed max' })
      .default({ min: 300, max: 850 }),
  })
  .strict();
export type QualityThresholds = z.infer<typeof QualityThresholds>;

export const validate = (validator: Validator, value: string, t: QualityThresholds, today: Date): boolean => {
  switch (validator) {
    case 'phone':
      return isValidPhone(value);
    case 'email':
      return isValidEmail(value);
    case 'prcResidentId':
      return isValidPrcResidentId(value, today);
    case 'creditScore':
      return isValidCreditScore(value, t.creditScore);
    case 'pastDate':
      return isValidPastDate(value, today);
  }
};

/** Per field, over the subjects of one page or a whole check. */
export interface FieldCounts {
  present: number;
  /** Only fields with a validator; values that could not be decrypted count as invalid. */
  invalid: number;
}

export interface PageCounts {
  subjects: number;
  stale: number;
  fields: Record<string, FieldCounts>;
}

export const addPageCounts = (a: PageCounts, b: PageCounts): PageCounts => {
  const fields: Record<string, FieldCounts> = { ...a.fields };
  for (const [field, c] of Object.entries(b.fields)) {
    const seen = fields[field] ?? { present: 0, invalid: 0 };
    fields[field] = { present: seen.present + c.present, invalid: seen.invalid + c.invalid };
  }
  return { subjects: a.subjects + b.subjects, stale: a.stale + b.stale, fields };
};

export const emptyCounts = (): PageCounts => ({ subjects: 0, stale: 0, fields: {} });

/** Consistency findings, counted by SQL over the whole registry. */
export interface Consistency {
  /** Consents still `granted` on a destroyed subject. */
  grantedConsentOnDestroyed: number;
  /** Destroyed subjects that still have field rows or a data key. */
  destroyedWithData: number;
  /** Subjects with encrypted fields but no data key (unreadable without having been destroyed). */
  encryptedWithoutKey: number;
}

/** Per blind-indexed field: values that another subject shares (each subject counted), and the groups. */
export type Duplicates = Record<string, { duplicated: number; groups: number }>;

export interface FieldReport {
  present: number;
  missing: number;
  completeness: number;
  invalid?: number;
  duplicated?: number;
  duplicateGroups?: number;
}

export interface Breach {
  check: 'completeness' | 'validity' | 'uniqueness' | 'timeliness' | 'consistency';
  field?: string;
  /** The measured value (a ratio, or a count for consistency) and the threshold it broke. */
  value: number;
  threshold: number;
}

export interface QualityAssessment {
  subjectsChecked: number;
  fields: Record<string, FieldReport>;
  timeliness: { stale: number; staleAfterMs: number; staleRatio: number };
  consistency: Consistency;
  breaches: Breach[];
}

const ratio = (n: number, of: number) => (of === 0 ? 0 : n / of);

/** The report from the counts, and every threshold it breaks. Pure. */
export const assessQuality = (
  counts: PageCounts,
  duplicates: Duplicates,
  consistency: Consistency,
  t: QualityThresholds,
): QualityAssessment => {
  const names = new Set([...Object.keys(counts.fields), ...Object.keys(t.completeness), ...Object.keys(duplicates)]);
  const fields: Record<string, FieldReport> = {};
  const breaches: Breach[] = [];
  for (const field of [...names].sort()) {
    const c = counts.fields[field] ?? { present: 0, invalid: 0 };
    const report: FieldReport = {
      present: c.present,
      missing: counts.subjects - c.present,
      completeness: ratio(c.present, counts.subjects),
    };
    const required = t.completeness[field];
    if (required !== undefined && counts.subjects > 0 && report.completeness < required)
      breaches.push({ check: 'completeness', field, value: report.completeness, threshold: required });
    if (t.validators[field]) {
      report.invalid = c.invalid;
      const invalidRatio = ratio(c.invalid, c.present);
      if (invalidRatio > t.maxInvalidRatio)
        breaches.push({ check: 'validity', field, value: invalidRatio, threshold: t.maxInvalidRatio });
    }
    const dup = duplicates[field];
    if (dup) {
      report.duplicated = dup.duplicated;
      report.duplicateGroups = dup.groups;
      const dupRatio = ratio(dup.duplicated, c.present);
      if (dupRatio > t.maxDuplicateRatio)
        breaches.push({ check: 'uniqueness', field, value: dupRatio, threshold: t.maxDuplicateRatio });
    }
    fields[field] = report;
  }
  const staleRatio = ratio(counts.stale, counts.subjects);
  if (staleRatio > t.maxStaleRatio)
    breaches.push({ check: 'timeliness', value: staleRatio, threshold: t.maxStaleRatio });
  const inconsistencies =
    consistency.grantedConsentOnDestroyed + consistency.destroyedWithData + consistency.encryptedWithoutKey;
  if (inconsistencies > t.maxInconsistencies)
    breaches.push({ check: 'consistency', value: inconsistencies, threshold: t.maxInconsistencies });
  return {
    subjectsChecked: counts.subjects,
    fields,
    timeliness: { stale: counts.stale, staleAfterMs: t.staleAfter, staleRatio },
    consistency,
    breaches,
  };
};

/** JSON text to a value for a zod pipe (the configuration variable); invalid JSON is an issue, not a throw. */
export const parseJsonText = (text: string, ctx: z.RefinementCtx): unknown => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a JSON object of quality thresholds' });
    return z.NEVER;
  }
};

/** The workflow's input: IDs and, optionally, thresholds (else the configured ones) and a page size. */
export interface QualityCheckInput {
  checkId: string;
  requestedBy: string;
  thresholds?: QualityThresholds;
  pageSize?: number;
  /** Pages per run before continue-as-new. */
  pagesPerRun?: number;
  /** Carried across continue-as-new: where the next page starts and the counts so far. */
  cursor?: string;
  counts?: PageCounts;
}

export interface QualityCheckResult {
  checkId: string;
  subjectsChecked: number;
  breaches: number;
  alertId: string | null;
  incidentId: string | null;
}

/** The owners' notice of a breached report: IDs and counts only, in the user's locale. Pure. */
export const renderQualityBreach = (
  locale: NotificationLocale,
  p: { checkId: string; subjectsChecked: number; breaches: Breach[] },
): { subject: string; text: string } => {
  const lines = p.breaches.map(
    (b) => `- ${b.check}${b.field ? ` ${b.field}` : ''}: ${+b.value.toFixed(4)} / ${b.threshold}`,
  );
  return locale === 'zh-CN'
    ? {
        subject: `[数据质量] ${p.breaches.length} 项阈值未达标`,
        text: [
          `数据质量检查 ${p.checkId} 检查了 ${p.subjectsChecked} 个数据主体，以下阈值未达标：`,
          ...lines,
          '',
          `详情：GET /v1/quality-reports/${p.checkId}`,
        ].join('\n'),
      }
    : {
        subject: `[data quality] ${p.breaches.length} threshold(s) breached`,
        text: [
          `Quality check ${p.checkId} checked ${p.subjectsChecked} subjects; these thresholds were breached:`,
          ...lines,
          '',
          `Report: GET /v1/quality-reports/${p.checkId}`,
        ].join('\n'),
      };
};
