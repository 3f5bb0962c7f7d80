import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { RejectReason } from '../../domain/subject-import';

/** Clearly fake values for subject `i`: example.com mail, 1380000 phone numbers, a test ID prefix. */
export const fakeSubject = (i: number, prefix = 'C') => {
  const n = String(i).padStart(6, '0');
  return {
    externalRef: `${prefix}-${n}`,
    jurisdiction: 'CN',
    locale: 'zh-CN',
    contact: { email: `test.user.${n}@example.com`, phone: `13800${n}` },
    retentionUntil: '2031-12-31',
    fields: {
      name: `测试用户${n}`,
      idNumber: `99000019900101${n.slice(-4)}`,
      bankAccount: `6200000000${n}`,
      creditScore: 600 + (i % 200),
      city: 'Testville',
      segment: 'retail',
    },
  };
};

/** The values the registry must never store in clear. */
export const personalValues = (i: number, prefix = 'C'): string[] => {
  const s = fakeSubject(i, prefix);
  return [s.contact.email, s.contact.phone, s.fields.name, s.fields.idNumber, s.fields.bankAccount];
};

export interface BadLine {
  text: string;
  reason: RejectReason;
}

/** Bad lines of several kinds; duplicates refer to subjects earlier in the same file. */
export const badLines = (duplicateOf: (k: number) => string): BadLine[] => [
  ...['not json at all', '{"externalRef": "X-1", ', '{oops}', '"just a string"', '{"a":1}}'].map((text) => ({
    text,
    reason: (text === '"just a string"' ? 'not_an_object' : 'invalid_json') as RejectReason,
  })),
  ...[
    { jurisdiction: 'CN', fields: { name: 'no ref' } },
    { externalRef: null, jurisdiction: 'CN' },
    { externalRef: '', jurisdiction: 'CN' },
    { jurisdiction: 'EU', locale: 'en' },
    { fields: {} },
  ].map((o) => ({ text: JSON.stringify(o), reason: 'missing_external_ref' as RejectReason })),
  ...[
    { externalRef: 'BAD-T1', jurisdiction: 123 },
    { externalRef: 'BAD-T2', jurisdiction: 'CN', fields: { name: { first: 'x' } } },
    { externalRef: 'BAD-T3', jurisdiction: 'CN', retentionUntil: 'next year' },
    { externalRef: 'BAD-T4', jurisdiction: 'CN', contact: { email: 'not-an-email' } },
    { externalRef: 42, jurisdiction: 'CN' },
  ].map((o) => ({ text: JSON.stringify(o), reason: 'invalid_value' as RejectReason })),
  ...[1, 2, 3, 4, 5].map((k) => ({
    text: JSON.stringify({ ...fakeSubject(0), externalRef: duplicateOf(k) }),
    reason: 'duplicate_in_file' as RejectReason,
  })),
  ...[
    { externalRef: 'BAD-U1', jurisdiction: 'CN', nickname: 'x' },
    { externalRef: 'BAD-U2', jurisdiction: 'CN', contact: { fax: '123' } },
  ].map((o) => ({ text: JSON.stringify(o), reason: 'unknown_property' as RejectReason })),
  ...[
    {
      externalRef: 'BAD-F1',
      jurisdiction: 'CN',
      contact: { email: 'a@example.com' },
      fields: { email: 'b@example.com' },
    },
  ].map((o) => ({ text: JSON.stringify(o), reason: 'duplicate_field' as RejectReason })),
  { text: '[1, 2, 3]', reason: 'not_an_object' },
  {
    text: JSON.stringify({ externalRef: 'BAD-V1', jurisdiction: 'CN', fields: { tags: ['a'] } }),
    reason: 'invalid_value',
  },
];

export interface GeneratedFile {
  lines: number;
  /** 1-based line number → expected reason, for the bad lines. */
  rejects: Map<number, RejectReason>;
  /** Indexes (for fakeSubject) of the subjects on valid lines. */
  subjects: number;
}

/**
 * Writes `lines` lines: valid subjects, with the given bad lines spread evenly through the file
 * (the first bad line comes after at least 10 valid ones, so duplicates have an original).
 */
export const writeSubjectFile = async (
  path: string,
  lines: number,
  options: { bad?: BadLine[]; prefix?: string } = {},
): Promise<GeneratedFile> => {
  const bad = options.bad ?? [];
  const out = createWriteStream(path);
  const rejects = new Map<number, RejectReason>();
  const every = bad.length ? Math.floor(lines / (bad.length + 1)) : Infinity;
  let subject = 0;
  let nextBad = 0;
  for (let line = 1; line <= lines; line++) {
    let text: string;
    if (nextBad < bad.length && line % every === 0) {
      const b = bad[nextBad++]!;
      rejects.set(line, b.reason);
      text = b.text;
    } else {
      text = JSON.stringify(fakeSubject(subject++, options.prefix));
    }
    if (!out.write(`${text}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return { lines, rejects, subjects: subject };
};
