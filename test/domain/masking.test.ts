import { describe, expect, it } from 'vitest';
import { defaultCatalog } from '../../domain/catalog';
import { FULL_MASK, maskStyleOf, maskValue } from '../../domain/masking';

const mask = (field: keyof typeof defaultCatalog.fields, value: string) => {
  const entry = defaultCatalog.fields[field]!;
  return maskValue(maskStyleOf(entry, entry.classification), value);
};

describe('masking', () => {
  it('masks the examples of the issue', () => {
    expect(mask('name', '张三')).toBe('张*');
    expect(mask('phone', '13812341234')).toBe('138****1234');
    expect(mask('idNumber', '110105199001011234')).toBe('**************1234');
  });

  it('masks other personal and sensitive values', () => {
    expect(mask('email', 'zhang.san@example.com')).toBe('z***@example.com');
    expect(mask('bankAccount', '6222 0000 1111 2222')).toBe('************2222');
    expect(mask('address', '北京市朝阳区某路1号')).toBe('北京市*******');
    expect(mask('creditScore', '712')).toBe(FULL_MASK);
    expect(mask('name', 'A')).toBe('*');
    expect(mask('phone', '+86 138-1234-1234')).toBe('861******1234');
  });

  it('leaves general values plain and never prints an encrypted value through a `none` style', () => {
    expect(mask('city', 'Shanghai')).toBe('Shanghai');
    expect(maskValue(maskStyleOf({ mask: 'none' }, 'sensitive'), 'secret')).toBe(FULL_MASK);
    expect(maskValue(maskStyleOf({}, 'personal'), 'Zhang')).toBe('Zha**');
  });
});
