import { describe, expect, it } from 'vitest';
import { parseSubjectLine } from '../../domain/subject-import';

const line = (o: unknown) => JSON.stringify(o);
const valid = {
  externalRef: 'C-000123',
  jurisdiction: 'CN',
  contact: { email: 'zhang.san@example.com', phone: '13812341234' },
  retentionUntil: '2031-12-31',
  fields: { name: '张三', idNumber: '110105199001011234', creditScore: 712, city: 'Beijing' },
};

describe('subject import line', () => {
  it('parses a line into one flat field map, contact included, with a default locale', () => {
    const parsed = parseSubjectLine(line(valid));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.subject.locale).toBe('zh-CN');
    expect(Object.fromEntries(parsed.values)).toEqual({
      name: '张三',
      idNumber: '110105199001011234',
      creditScore: 712,
      city: 'Beijing',
      email: 'zhang.san@example.com',
      phone: '13812341234',
    });
  });

  it.each([
    ['{"externalRef": ', 'invalid_json'],
    ['[1]', 'not_an_object'],
    ['null', 'not_an_object'],
    [line({ jurisdiction: 'CN' }), 'missing_external_ref'],
    [line({ ...valid, externalRef: '' }), 'missing_external_ref'],
    [line({ ...valid, externalRef: 7 }), 'invalid_value'],
    [line({ ...valid, jurisdiction: 'China' }), 'invalid_value'],
    [line({ ...valid, retentionUntil: '31/12/2031' }), 'invalid_value'],
    [line({ ...valid, fields: { name: ['a'] } }), 'invalid_value'],
    [line({ ...valid, fields: { 'bad name': 'x' } }), 'invalid_value'],
    [line({ ...valid, ssn: '123' }), 'unknown_property'],
    [line({ ...valid, fields: { email: 'other@example.com' } }), 'duplicate_field'],
  ])('rejects %s as %s', (text, reason) => {
    expect(parseSubjectLine(text)).toMatchObject({ ok: false, reason });
  });

  it('never quotes the rejected value in the message', () => {
    const secrets = ['110105199001011234', 'not-an-email-张三', '13812341234'];
    const lines = [
      line({ ...valid, contact: { email: secrets[1] } }),
      line({ ...valid, fields: { idNumber: { v: secrets[0] } } }),
      line({ ...valid, jurisdiction: secrets[2] }),
      line({ ...valid, fields: { [secrets[1]!]: 'x' } }),
      `{"externalRef": "${secrets[0]}`,
    ];
    for (const text of lines) {
      const parsed = parseSubjectLine(text);
      expect(parsed.ok).toBe(false);
      if (parsed.ok) continue;
      for (const secret of secrets) expect(parsed.message).not.toContain(secret);
    }
  });

  it.each([
    ['a NUL in a general field value', line({ ...valid, fields: { city: 'Bei\u0000jing' } }), 'invalid_character'],
    ['a NUL in a field name', line({ ...valid, fields: { 'ci\u0000ty': 'x' } }), 'invalid_character'],
    ['a NUL in a top-level key', line({ ...valid, 'x\u0000': 1 }), 'invalid_character'],
    ['a NUL in a contact value', line({ ...valid, contact: { phone: '138\u00001234' } }), 'invalid_character'],
    ['a lone high surrogate', line({ ...valid, fields: { name: 'a\ud800b' } }), 'invalid_character'],
    ['a lone low surrogate', line({ ...valid, fields: { name: '\udc00' } }), 'invalid_character'],
    ['year 0000', line({ ...valid, retentionUntil: '0000-01-01' }), 'invalid_value'],
    ['a year before 1900', line({ ...valid, retentionUntil: '1899-12-31' }), 'invalid_value'],
    ['a day that does not exist', line({ ...valid, retentionUntil: '2023-02-30' }), 'invalid_value'],
    ['a five-digit year', line({ ...valid, retentionUntil: '10000-01-01' }), 'invalid_value'],
    [
      'fields.__proto__',
      '{"externalRef":"C-1","jurisdiction":"CN","fields":{"__proto__":"x","name":"y"}}',
      'invalid_field_name',
    ],
    ['fields.constructor', line({ ...valid, fields: { constructor: 'x' } }), 'invalid_field_name'],
    ['fields.prototype', line({ ...valid, fields: { prototype: 'x' } }), 'invalid_field_name'],
    [
      'too many fields',
      line({ ...valid, fields: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`f${i}`, i])) }),
      'invalid_value',
    ],
  ])('rejects %s per line, without quoting it', (_, text, reason) => {
    const parsed = parseSubjectLine(text);
    expect(parsed).toMatchObject({ ok: false, reason });
    if (parsed.ok) return;
    expect(parsed.message).not.toMatch(/Bei|jing|0000-01-01|1899|2023-02-30/);
    expect(parsed.message).not.toContain('\u0000');
  });

  it('keeps a well-formed surrogate pair and the edges of the date range', () => {
    for (const retentionUntil of ['1900-01-01', '9999-12-31']) {
      expect(parseSubjectLine(line({ ...valid, retentionUntil, fields: { name: '😀' } })).ok).toBe(true);
    }
  });
});
