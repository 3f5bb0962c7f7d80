import { randomUUID } from 'node:crypto';
import { and, eq, inArray } from 'drizzle-orm';
import type { Db } from '../db/client';
import { subjectFields, subjects } from '../db/schema';
import {
  blindIndexedFields,
  catalogPurposes,
  classifyField,
  type Catalog,
  type Classification,
} from '../domain/catalog';
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

type FieldRow = typeof subjectFields.$inferSelect;
type SubjectRow = typeof subjects.$inferSelect;

const typed = (row: FieldRow, text: string): string | number | boolean =>
  row.valueType === 'number' ? Number(text) : row.valueType === 'boolean' ? text === 'true' : text;

/** Reads of the subject registry: masked by default; a reveal is purpose-bound and audited first. */
export const subjectRegistry = (d: { db: Db; keyring: Keyring; catalog: Catalog }) => {
  const keys = dataKeys(d);
  const searchable = new Set(blindIndexedFields(d.catalog));
  const purposes = catalogPurposes(d.catalog);

  const plaintext = (row: FieldRow, key: DataKey | undefined, subjectId: string): string | undefined => {
    if (row.plainValue !== null) return row.plainValue;
    if (!key || !row.ciphertext || row.keyVersion !== key.keyVersion) return undefined;
    return decryptField(key.dek, { subjectId, field: row.field, keyVersion: row.keyVersion }, row.ciphertext);
  };

  const view = (subject: SubjectRow, rows: FieldRow[], key: DataKey | undefined, reveal: Set<string>): SubjectView => {
    const fields: Record<string, FieldView> = {};
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
    };
  };

  const load = async (ids: string[]): Promise<SubjectView[]> => {
    if (ids.length === 0) return [];
    const [rows, fieldRows, dataKeysById] = await Promise.all([
      d.db.select().from(subjects).where(inArray(subjects.id, ids)),
      d.db.select().from(subjectFields).where(inArray(subjectFields.subjectId, ids)),
      keys.loadDataKeys(ids),
    ]);
    return rows
      .sort((a, b) => a.externalRef.localeCompare(b.externalRef))
      .map((s) =>
        view(
          s,
          fieldRows.filter((f) => f.subjectId === s.id),
          dataKeysById.get(s.id),
          new Set(),
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
     * Decrypts the fields whose catalog purposes include `purpose`, after appending an audit entry
     * naming the actor, the subject, the fields and the purpose. Undefined when there is no such subject.
     */
    async reveal(id: string, request: Reveal): Promise<RevealedSubject | undefined> {
      if (!purposes.has(request.purpose))
        throw new UnknownPurposeError(`purpose ${request.purpose} is not in the catalog`);
      const [subject] = await d.db.select().from(subjects).where(eq(subjects.id, id));
      if (!subject) return undefined;
      const rows = await d.db.select().from(subjectFields).where(eq(subjectFields.subjectId, id));
      const encrypted = rows.filter((r) => r.classification !== 'general').map((r) => r.field);
      const revealed = encrypted
        .filter((f) => classifyField(d.catalog, f).entry.purposes.includes(request.purpose))
        .sort();
      await appendAudit(d.db, {
        actor: request.actor,
        apiKeyId: request.apiKeyId,
        action: 'subject.revealed',
        targetType: 'subject',
        targetId: id,
        details: { fields: revealed, purpose: request.purpose },
        idempotencyKey: `subject-reveal:${randomUUID()}`,
      });
      const key = await keys.loadDataKey(id);
      return {
        subject: view(subject, rows, key, new Set(revealed)),
        purpose: request.purpose,
        revealed,
        withheld: encrypted.filter((f) => !revealed.includes(f)).sort(),
      };
    },
  };
};

export type SubjectRegistry = ReturnType<typeof subjectRegistry>;
