import { createHmac } from 'node:crypto';
import type { Keyring } from '../../runtime/keyring';

/** The form a value is compared in: trimmed; emails lower-cased, phones digits only, ID numbers upper-case, no spaces. */
export const normalizeForIndex = (field: string, value: string): string => {
  const trimmed = value.normalize('NFC').trim();
  switch (field) {
    case 'email':
      return trimmed.toLowerCase();
    case 'phone':
      return trimmed.replace(/\D/g, '');
    case 'idNumber':
      return trimmed.replace(/\s/g, '').toUpperCase();
    default:
      return trimmed;
  }
};

/** Keyed HMAC-SHA256 over `field NUL normalized value`: equality search without decrypting. */
export const blindIndex = (keyring: Keyring, field: string, value: string): string =>
  createHmac('sha256', keyring.blindIndexKey)
    .update(`${field}\u0000${normalizeForIndex(field, value)}`, 'utf8')
    .digest('hex');
