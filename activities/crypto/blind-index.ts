import { createHmac } from 'node:crypto';
import type { Keyring } from '../../runtime/keyring';

/**
 * Keyed HMAC-SHA256 over `field NUL value`: equality search without decrypting. The value must already be
 * in its compared form (see `fieldBlindIndex`, which normalises it as the field's catalog entry says).
 */
export const blindIndex = (keyring: Pick<Keyring, 'blindIndexKey'>, field: string, normalisedValue: string): string =>
  createHmac('sha256', keyring.blindIndexKey).update(`${field}\u0000${normalisedValue}`, 'utf8').digest('hex');
