import { describe, expect, it } from 'vitest';
import { blindIndex, normalizeForIndex } from '../../../activities/crypto/blind-index';
import { newKeyring } from './helpers';

const keyring = newKeyring();

describe('blind index', () => {
  it('is stable per key and differs across keys and fields', () => {
    const a = blindIndex(keyring, 'email', 'li.na@example.cn');
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(blindIndex(keyring, 'email', 'li.na@example.cn')).toBe(a);
    expect(blindIndex(newKeyring(), 'email', 'li.na@example.cn')).not.toBe(a);
    expect(blindIndex(keyring, 'contactEmail', 'li.na@example.cn')).not.toBe(a);
  });

  it('normalises before hashing', () => {
    expect(normalizeForIndex('email', '  Li.Na@Example.CN ')).toBe('li.na@example.cn');
    expect(normalizeForIndex('phone', '+86 (138) 0013-8000')).toBe('8613800138000');
    expect(normalizeForIndex('idNumber', ' 11010119900307457x ')).toBe('11010119900307457X');
    expect(normalizeForIndex('idNumber', 'ab 12 cd')).toBe('AB12CD');
    expect(normalizeForIndex('name', '  Wang Xiaoming ')).toBe('Wang Xiaoming');
    expect(blindIndex(keyring, 'email', ' LI.NA@example.cn')).toBe(blindIndex(keyring, 'email', 'li.na@example.cn'));
    expect(blindIndex(keyring, 'phone', '138-0013-8000')).toBe(blindIndex(keyring, 'phone', '13800138000'));
  });
});
