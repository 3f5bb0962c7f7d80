import { asc, eq } from 'drizzle-orm';
import type { Db } from '../db/client';
import { consents, subjectFields, subjects } from '../db/schema';
import { classifyField, legalBasisOf, type Catalog } from '../domain/catalog';
import type { Keyring } from '../runtime/keyring';
import { decryptField } from './crypto/field-cipher';
import { dataKeys } from './keys';

type Value = string | number | boolean | null;

/** One field as the subject gets it: the value in clear, its class, the purposes (with their basis) and retention. */
export interface ExportedField {
  field: string;
  classification: string;
  classified: boolean;
  value: Value;
  purposes: { purpose: string; legalBasis: string | null }[];
  retention: string;
}

export interface SubjectExport {
  format: 'custodian-export/v1';
  requestId: string;
  generatedAt: string;
  subject: {
    id: string;
    externalRef: string;
    jurisdiction: string;
    locale: string;
    status: string;
    retentionUntil: string | null;
  };
  fields: ExportedField[];
  consents: Record<string, string | null>[];
}

const csvCell = (v: unknown) => {
  const text = v === null || v === undefined ? '' : String(v);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};

/** The fields as CSV (RFC 4180): field, classification, value, purposes, retention. */
export const exportCsv = (e: SubjectExport) =>
  [
    'field,classification,value,purposes,retention',
    ...e.fields.map((f) =>
      [f.field, f.classification, f.value, f.purposes.map((p) => p.purpose).join(' '), f.retention]
        .map(csvCell)
        .join(','),
    ),
  ].join('\r\n');

/**
 * Everything held about the subject, decrypted (access, GDPR Art. 15; portability, Art. 20): each field with the
 * catalog's classification, purposes and retention, and the subject's consent records. Undefined for no subject.
 */
export const buildSubjectExport = async (
  d: { db: Db; keyring: Keyring; catalog: Catalog },
  subjectId: string,
  requestId: string,
  now: Date,
): Promise<SubjectExport | undefined> => {
  const [[subject], rows, consentRows, key] = await Promise.all([
    d.db.select().from(subjects).where(eq(subjects.id, subjectId)),
    d.db.select().from(subjectFields).where(eq(subjectFields.subjectId, subjectId)).orderBy(asc(subjectFields.field)),
    d.db.select().from(consents).where(eq(consents.subjectId, subjectId)).orderBy(asc(consents.createdAt)),
    dataKeys(d).loadDataKey(subjectId),
  ]);
  if (!subject) return undefined;
  const fields = rows.map((r): ExportedField => {
    const { entry } = classifyField(d.catalog, r.field);
    let text: string | null = r.plainValue;
    if (text === null && r.ciphertext && key && r.keyVersion === key.keyVersion)
      text = decryptField(key.dek, { subjectId, field: r.field, keyVersion: r.keyVersion }, r.ciphertext);
    const value: Value =
      text === null
        ? null
        : r.valueType === 'number'
          ? Number(text)
          : r.valueType === 'boolean'
            ? text === 'true'
            : text;
    return {
      field: r.field,
      classification: r.classification,
      classified: r.classified,
      value,
      purposes: entry.purposes.map((p) => ({ purpose: p, legalBasis: legalBasisOf(d.catalog, p) ?? null })),
      retention: entry.retention,
    };
  });
  const iso = (t: Date | null) => t?.toISOString() ?? null;
  return {
    format: 'custodian-export/v1',
    requestId,
    generatedAt: now.toISOString(),
    subject: {
      id: subject.id,
      externalRef: subject.externalRef,
      jurisdiction: subject.jurisdiction,
      locale: subject.locale,
      status: subject.status,
      retentionUntil: subject.retentionUntil,
    },
    fields,
    consents: consentRows.map((c) => ({
      consentId: c.id,
      purpose: c.purpose,
      status: c.status,
      channel: c.channel,
      requestedAt: iso(c.requestedAt),
      decidedAt: iso(c.decidedAt),
      validUntil: iso(c.validUntil),
      withdrawnAt: iso(c.withdrawnAt),
      sensitiveDecision: c.sensitiveDecision,
      receiptId: (c.receipt as { receipt?: { receiptId?: string } } | null)?.receipt?.receiptId ?? null,
    })),
  };
};

/** The document sealed for the subject: the export as JSON and its fields as CSV, side by side. */
export const exportDocument = (e: SubjectExport) => JSON.stringify({ json: e, csv: exportCsv(e) });
