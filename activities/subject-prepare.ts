import { setImmediate as yieldToIo } from 'node:timers/promises';
import { classifyField, unclassifiedNameProblem, type Catalog } from '../domain/catalog';
import {
  parseSubjectLine,
  type FieldValue,
  type ImportCursor,
  type ImportReject,
  type SubjectLine,
} from '../domain/subject-import';
import type { Keyring } from '../runtime/keyring';
import type { LineBatch } from './import-staging';
import { newSubject, type NewSubject } from './subject-writer';

export const MAX_UNCLASSIFIED_NAMES = 100;
const YIELD_EVERY = 64;

/** What preparing a batch needs: no database, so it can run in a worker thread. */
export interface PrepareDeps {
  /** Only the KEKs and the blind-index key are used. */
  keyring: Keyring;
  catalog: Catalog;
}

export interface ValidLine {
  line: number;
  subject: SubjectLine & { locale: string };
  values: Map<string, FieldValue>;
  /** Encrypted ahead of the existence check: nearly every line of a first import is new. */
  speculative?: NewSubject;
}

export interface PreparedBatch {
  start: ImportCursor;
  end: ImportCursor;
  atEnd: boolean;
  /** Non-blank lines. */
  lines: number;
  valid: ValidLine[];
  rejects: ImportReject[];
  unclassified: string[];
}

/** Validates, classifies and encrypts a batch of lines; yields now and then so a commit in flight keeps flowing. */
export const prepareBatch = async (d: PrepareDeps, batch: LineBatch): Promise<PreparedBatch> => {
  const valid: ValidLine[] = [];
  const rejects: ImportReject[] = [];
  const unclassified = new Set<string>();
  const seen = new Set<string>();
  let n = 0;
  for (const raw of batch.lines) {
    if (++n % YIELD_EVERY === 0) await yieldToIo();
    if ('problem' in raw) {
      const message = raw.problem === 'line_too_long' ? 'line is longer than the limit' : 'line is not valid UTF-8';
      rejects.push({ line: raw.line, reason: raw.problem, message });
      continue;
    }
    const parsed = parseSubjectLine(raw.text);
    if (!parsed.ok) {
      rejects.push({ line: raw.line, reason: parsed.reason, message: parsed.message });
      continue;
    }
    const names = [...parsed.values.keys()].filter((field) => !classifyField(d.catalog, field).classified);
    const badName = names.map(unclassifiedNameProblem).find((problem) => problem !== undefined);
    if (badName) {
      rejects.push({ line: raw.line, reason: 'invalid_field_name', message: `fields.<key>: ${badName}` });
      continue;
    }
    for (const field of names) unclassified.add(field);
    const first = !seen.has(parsed.subject.externalRef);
    seen.add(parsed.subject.externalRef);
    valid.push({
      line: raw.line,
      subject: parsed.subject,
      values: parsed.values,
      speculative: first ? newSubject(d.catalog, d.keyring, parsed.subject, parsed.values) : undefined,
    });
  }
  return {
    start: batch.start,
    end: batch.end,
    atEnd: batch.atEnd,
    lines: batch.lines.length,
    valid,
    rejects,
    unclassified: [...unclassified].sort().slice(0, MAX_UNCLASSIFIED_NAMES),
  };
};
