import { randomUUID } from 'node:crypto';
import { and, asc, desc, eq, inArray } from 'drizzle-orm';
import type { Db } from '../db/client';
import {
  consents,
  fieldObjections,
  purposeRestrictions,
  requestRestrictions,
  requestTexts,
  subjectFields,
  subjects,
} from '../db/schema';
import {
  blindIndexedFields,
  catalogPurposes,
  classifyField,
  legalBasisOf,
  type Catalog,
  type Classification,
  type LegalBasis,
} from '../domain/catalog';
import type { ConsentStatus } from '../domain/consent';
import {
  consentGate,
  type ConsentGateVerdict,
  type ConsentRefusalCode,
  type PurposeConsent,
  type PurposeRestriction,
} from '../domain/consent-gate';
import { maskStyleOf, maskValue } from '../domain/masking';
import type { Keyring } from '../runtime/keyring';
import { appendAudit } from './audit';
import { decryptField } from './crypto/field-cipher';
import { dataKeys, type DataKey } from './keys';
import { fieldBlindIndex } from './subject-blind-index';

export interface FieldView {
  classification: Classification;
  /** False when the catalog did not name the field at import (it was encrypted as personal). */
  classified: boolean;
  /** Masked unless revealed; null when the subject's data key is gone (crypto-shredded). */
  value: string | number | boolean | null;
  masked: boolean;
  /** Disputed by the subject (征信业管理条例 Art. 25): marked from the objection until its outcome. */
  underObjection?: true;
}

/** A credit-record objection about the subject's fields; after `upheld` or `unresolved`, the subject's statement (Art. 16). */
export interface ObjectionView {
  requestId: string;
  field: string;
  status: 'under-objection' | 'corrected' | 'upheld' | 'unresolved';
  markedAt: string;
  resolvedAt: string | null;
  /** Null while under objection, after a correction, or when the subject's key is gone. */
  statement: string | null;
}

/** A purpose the subject has a consent or a restriction for, and what a reveal for it would meet now. */
export interface SubjectConsentView {
  purpose: string;
  /** Null for a purpose the catalog does not name (a reveal for it is refused as unknown). */
  legalBasis: LegalBasis | null;
  consentId: string | null;
  /** The latest consent's status; null when only a restriction remains. */
  status: ConsentStatus | null;
  validUntil: string | null;
  restricted: boolean;
  /** The problem code a reveal for this purpose gets now; null when the consent gate lets it through. */
  refusal: ConsentRefusalCode | null;
}

export interface SubjectView {
  id: string;
  externalRef: string;
  jurisdiction: string;
  locale: string;
  status: 'active' | 'restricted' | 'destroyed';
  retentionUntil: string | null;
  legalHold: boolean;
  importId: string | null;
  createdAt: string;
  updatedAt: string;
  fields: Record<string, FieldView>;
  consents: SubjectConsentView[];
  objections: ObjectionView[];
}

export interface Reveal {
  actor: string;
  apiKeyId?: string;
  purpose: string;
}

export interface RevealedSubject {
  subject: SubjectView;
  purpose: string;
  /** Fields shown in clear because the catalog allows this purpose for them. */
  revealed: string[];
  /** Encrypted fields the purpose does not cover: still masked. */
  withheld: string[];
}

/** A blind-index search: who asks, and why. The searched value is never part of it. */
export interface Search {
  actor: string;
  apiKeyId?: string;
  purpose: string;
}

export class UnknownPurposeError extends Error {
  override name = 'UnknownPurposeError';
}

/** The consent gate refused a reveal; the refusal is audited and nothing was decrypted. */
export class ConsentRefusedError extends Error {
  override name = 'ConsentRefusedError';
  constructor(readonly verdict: Extract<ConsentGateVerdict, { allowed: false }>) {
    super(verdict.message);
  }
}

/** What the consents and purpose_restrictions tables hold for one subject and purpose. */
interface ConsentFacts {
  consent?: PurposeConsent;
  restriction?: PurposeRestriction;
}

type FieldRow = typeof subjectFields.$inferSelect;
type ObjectionRow = typeof fieldObjections.$inferSelect & { statement: typeof requestTexts.$inferSelect | null };
type SubjectRow = typeof subjects.$inferSelect;

const typed = (row: FieldRow, text: string): string | number | boolean =>
  row.valueType === 'number' ? Number(text) : row.valueType === 'boolean' ? text === 'true' : text;

/** Reads of the subject registry: masked by default; a reveal is purpose-bound and audited first. */
export const subjectRegistry = (d: { db: Db; keyring: Keyring; catalog: Catalog; clock?: () => Date }) => {
  const now = d.clock ?? (() => new Date());
  const keys = dataKeys(d);
  const searchable = new Set(blindIndexedFields(d.catalog));
  const purposes = catalogPurposes(d.catalog);

  /** The encrypted fields of the subject a purpose covers: what a reveal for it would decrypt. */
  const covered = (rows: FieldRow[], purpose: string): FieldRow[] =>
    rows.filter(
      (r) => r.classification !== 'general' && classifyField(d.catalog, r.field).entry.purposes.includes(purpose),
    );

  // A purpose missing from the catalog's purposes cannot pass catalog validation; consent is the safe side anyway.
  const basisOf = (purpose: string): LegalBasis => legalBasisOf(d.catalog, purpose) ?? 'consent';

  const gate = (purpose: string, facts: ConsentFacts, reveals: FieldRow[]): ConsentGateVerdict =>
    consentGate({
      purpose,
      legalBasis: basisOf(purpose),
      ...facts,
      touchesSensitive: reveals.some((r) => r.classification === 'sensitive'),
      now: now(),
    });

  const consentView = (purpose: string, f: ConsentFacts, rows: FieldRow[]): SubjectConsentView => {
    const known = purposes.has(purpose);
    const verdict = known ? gate(purpose, f, covered(rows, purpose)) : undefined;
    return {
      purpose,
      legalBasis: known ? basisOf(purpose) : null,
      consentId: f.consent?.consentId ?? f.restriction?.consentId ?? null,
      status: f.consent?.status ?? null,
      validUntil: f.consent?.validUntil?.toISOString() ?? null,
      restricted: f.restriction !== undefined,
      refusal: verdict && !verdict.allowed ? verdict.code : null,
    };
  };

  /** Per subject, per purpose: the latest consent (by creation) and the restriction a withdrawal left. */
  const consentFacts = async (ids: string[]): Promise<Map<string, Map<string, ConsentFacts>>> => {
    const [latest, restrictions] = await Promise.all([
      d.db
        .selectDistinctOn([consents.subjectId, consents.purpose], {
          subjectId: consents.subjectId,
          purpose: consents.purpose,
          consentId: consents.id,
          status: consents.status,
          validUntil: consents.validUntil,
          sensitiveDecision: consents.sensitiveDecision,
        })
        .from(consents)
        .where(inArray(consents.subjectId, ids))
        .orderBy(asc(consents.subjectId), asc(consents.purpose), desc(consents.createdAt), desc(consents.id)),
      d.db.select().from(purposeRestrictions).where(inArray(purposeRestrictions.subjectId, ids)),
    ]);
    const byRequest = await d.db.select().from(requestRestrictions).where(inArray(requestRestrictions.subjectId, ids));
    const bySubject = new Map<string, Map<string, ConsentFacts>>(ids.map((id) => [id, new Map()]));
    const factsOf = (subjectId: string, p: string): ConsentFacts => {
      const perPurpose = bySubject.get(subjectId)!;
      if (!perPurpose.has(p)) perPurpose.set(p, {});
      return perPurpose.get(p)!;
    };
    for (const { subjectId, purpose: p, ...consent } of latest) factsOf(subjectId, p).consent = consent;
    for (const r of restrictions)
      factsOf(r.subjectId, r.purpose).restriction = { consentId: r.consentId, reason: r.reason };
    for (const r of byRequest) {
      const f = factsOf(r.subjectId, r.purpose);
      f.restriction ??= { requestId: r.requestId, reason: 'restricted-by-request' };
    }
    return bySubject;
  };

  /** Objections of the subjects, with the sealed statement rows beside them. */
  const objectionsOf = async (ids: string[]): Promise<ObjectionRow[]> => {
    const rows = await d.db
      .select({ objection: fieldObjections, statement: requestTexts })
      .from(fieldObjections)
      .leftJoin(requestTexts, eq(requestTexts.id, fieldObjections.statementTextId))
      .where(inArray(fieldObjections.subjectId, ids));
    return rows.map((r) => ({ ...r.objection, statement: r.statement }));
  };

  const objectionView = (o: ObjectionRow, key: DataKey | undefined): ObjectionView => {
    const shown =
      (o.status === 'upheld' || o.status === 'unresolved') && o.statement && key?.keyVersion === o.statement.keyVersion;
    return {
      requestId: o.requestId,
      field: o.field,
      status: o.status,
      markedAt: o.markedAt.toISOString(),
      resolvedAt: o.resolvedAt?.toISOString() ?? null,
      statement: shown
        ? decryptField(
            key.dek,
            { subjectId: o.subjectId, field: `request-text:${o.statement!.id}`, keyVersion: key.keyVersion },
            o.statement!.ciphertext,
          )
        : null,
    };
  };

  const plaintext = (row: FieldRow, key: DataKey | undefined, subjectId: string): string | undefined => {
    if (row.plainValue !== null) return row.plainValue;
    if (!key || !row.ciphertext || row.keyVersion !== key.keyVersion) return undefined;
    return decryptField(key.dek, { subjectId, field: row.field, keyVersion: row.keyVersion }, row.ciphertext);
  };

  const view = (
    subject: SubjectRow,
    rows: FieldRow[],
    key: DataKey | undefined,
    reveal: Set<string>,
    facts: Map<string, ConsentFacts>,
    objections: ObjectionRow[],
  ): SubjectView => {
    const fields: Record<string, FieldView> = {};
    const disputed = new Set(objections.filter((o) => o.status === 'under-objection').map((o) => o.field));
    for (const row of rows.sort((a, b) => a.field.localeCompare(b.field))) {
      const text = plaintext(row, key, subject.id);
      const shown = row.classification === 'general' || reveal.has(row.field);
      const { entry } = classifyField(d.catalog, row.field);
      fields[row.field] = {
        classification: row.classification,
        classified: row.classified,
        value:
          text === undefined
            ? null
            : shown
              ? typed(row, text)
              : maskValue(maskStyleOf(entry, row.classification), text),
        masked: !shown,
        ...(disputed.has(row.field) ? { underObjection: true as const } : {}),
      };
    }
    return {
      id: subject.id,
      externalRef: subject.externalRef,
      jurisdiction: subject.jurisdiction,
      locale: subject.locale,
      status: subject.status,
      retentionUntil: subject.retentionUntil,
      legalHold: subject.legalHold,
      importId: subject.importId,
      createdAt: subject.createdAt.toISOString(),
      updatedAt: subject.updatedAt.toISOString(),
      fields,
      consents: [...facts].sort(([a], [b]) => a.localeCompare(b)).map(([purpose, f]) => consentView(purpose, f, rows)),
      objections: objections
        .sort((a, b) => a.markedAt.getTime() - b.markedAt.getTime() || a.field.localeCompare(b.field))
        .map((o) => objectionView(o, key)),
    };
  };

  const load = async (ids: string[]): Promise<SubjectView[]> => {
    if (ids.length === 0) return [];
    const [rows, fieldRows, dataKeysById, facts, objections] = await Promise.all([
      d.db.select().from(subjects).where(inArray(subjects.id, ids)),
      d.db.select().from(subjectFields).where(inArray(subjectFields.subjectId, ids)),
      keys.loadDataKeys(ids),
      consentFacts(ids),
      objectionsOf(ids),
    ]);
    return rows
      .sort((a, b) => a.externalRef.localeCompare(b.externalRef))
      .map((s) =>
        view(
          s,
          fieldRows.filter((f) => f.subjectId === s.id),
          dataKeysById.get(s.id),
          new Set(),
          facts.get(s.id)!,
          objections.filter((o) => o.subjectId === s.id),
        ),
      );
  };

  const matchIds = async (field: string, value: string): Promise<string[]> => {
    if (!searchable.has(field)) throw new Error(`${field} has no blind index`);
    const rows = await d.db
      .selectDistinct({ id: subjectFields.subjectId })
      .from(subjectFields)
      .where(
        and(
          eq(subjectFields.field, field),
          eq(subjectFields.blindIndex, fieldBlindIndex(d.keyring, field, classifyField(d.catalog, field).entry, value)),
        ),
      )
      .limit(100);
    return rows.map((r) => r.id);
  };

  return {
    searchableFields: [...searchable],
    purposes,

    async get(id: string): Promise<SubjectView | undefined> {
      return (await load([id]))[0];
    },

    async findByExternalRef(externalRef: string): Promise<SubjectView[]> {
      const rows = await d.db.select({ id: subjects.id }).from(subjects).where(eq(subjects.externalRef, externalRef));
      return load(rows.map((r) => r.id));
    },

    /** Equality search through the keyed blind index: the value is never stored or compared in clear. */
    async findByField(field: string, value: string): Promise<SubjectView[]> {
      return load(await matchIds(field, value));
    },

    /**
     * findByField for a person: the purpose must be one the field's catalog entry names, and an audit entry
     * (actor, API key, index, purpose, match count; never the value) is appended before any result is read.
     */
    async search(field: string, value: string, request: Search): Promise<SubjectView[]> {
      if (!classifyField(d.catalog, field).entry.purposes.includes(request.purpose))
        throw new UnknownPurposeError(`purpose ${request.purpose} does not cover ${field}`);
      const ids = await matchIds(field, value);
      await appendAudit(d.db, {
        actor: request.actor,
        apiKeyId: request.apiKeyId,
        action: 'subject.searched',
        targetType: 'subject-index',
        targetId: field,
        details: { index: field, purpose: request.purpose, matches: ids.length },
        idempotencyKey: `subject-search:${randomUUID()}`,
      });
      return load(ids);
    },

    /**
     * Decrypts the fields whose catalog purposes include `purpose`, after appending an audit entry naming the
     * actor, the subject, the fields and the purpose. The consent gate comes first: a restricted purpose, or a
     * consent-based one without a granted, unexpired consent (and the separate sensitive grant where a sensitive
     * field would be decrypted), throws ConsentRefusedError after auditing the refusal, and nothing is decrypted.
     * Undefined when there is no such subject.
     */
    async reveal(id: string, request: Reveal): Promise<RevealedSubject | undefined> {
      if (!purposes.has(request.purpose))
        throw new UnknownPurposeError(`purpose ${request.purpose} is not in the catalog`);
      const [subject] = await d.db.select().from(subjects).where(eq(subjects.id, id));
      if (!subject) return undefined;
      const [rows, facts, objections] = await Promise.all([
        d.db.select().from(subjectFields).where(eq(subjectFields.subjectId, id)),
        consentFacts([id]),
        objectionsOf([id]),
      ]);
      const encrypted = rows.filter((r) => r.classification !== 'general').map((r) => r.field);
      const reveals = covered(rows, request.purpose);
      const revealed = reveals.map((r) => r.field).sort();
      const perPurpose = facts.get(id)!;
      const verdict = gate(request.purpose, perPurpose.get(request.purpose) ?? {}, reveals);
      const audit = { actor: request.actor, apiKeyId: request.apiKeyId, targetType: 'subject', targetId: id };
      if (!verdict.allowed) {
        await appendAudit(d.db, {
          ...audit,
          action: 'subject.reveal-refused',
          details: {
            purpose: request.purpose,
            legalBasis: verdict.legalBasis,
            code: verdict.code,
            consentState: verdict.state,
            consentId: verdict.consentId,
            fields: revealed,
          },
          idempotencyKey: `subject-reveal-refused:${randomUUID()}`,
        });
        throw new ConsentRefusedError(verdict);
      }
      await appendAudit(d.db, {
        ...audit,
        action: 'subject.revealed',
        details: { fields: revealed, purpose: request.purpose },
        idempotencyKey: `subject-reveal:${randomUUID()}`,
      });
      const key = await keys.loadDataKey(id);
      return {
        subject: view(subject, rows, key, new Set(revealed), perPurpose, objections),
        purpose: request.purpose,
        revealed,
        withheld: encrypted.filter((f) => !revealed.includes(f)).sort(),
      };
    },
  };
};

export type SubjectRegistry = ReturnType<typeof subjectRegistry>;
