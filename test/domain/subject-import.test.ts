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
});
