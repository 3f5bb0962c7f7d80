import { describe, expect, it } from 'vitest';
import { blindIndex } from '../../../activities/crypto/blind-index';
import { fieldBlindIndex } from '../../../activities/subject-blind-index';
import { normaliseForIndex } from '../../../domain/catalog';
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

  it('normalises as the catalog entry says before hashing', () => {
    expect(normaliseForIndex('email', '  Li.Na@Example.CN ')).toBe('li.na@example.cn');
    expect(normaliseForIndex('phone', '+86 (138) 0013-8000')).toBe('8613800138000');
    expect(normaliseForIndex('idNumber', ' 11010119900307457x ')).toBe('11010119900307457X');
    expect(normaliseForIndex('idNumber', 'ab 12 cd')).toBe('AB12CD');
    expect(normaliseForIndex('trim', '  Wang Xiaoming ')).toBe('Wang Xiaoming');
    const email = { normalise: 'email' as const };
    const phone = { normalise: 'phone' as const };
    expect(fieldBlindIndex(keyring, 'email', email, ' LI.NA@example.cn')).toBe(
      blindIndex(keyring, 'email', 'li.na@example.cn'),
    );
    expect(fieldBlindIndex(keyring, 'phone', phone, '138-0013-8000')).toBe(
      fieldBlindIndex(keyring, 'phone', phone, '13800138000'),
    );
    // A field added by an operator with phone normalisation is compared as a phone, whatever its name.
    expect(fieldBlindIndex(keyring, 'mobile', phone, '138 0013 8000')).toBe(
      blindIndex(keyring, 'mobile', '13800138000'),
    );
  });
});
