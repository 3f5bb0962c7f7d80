import { createHmac } from 'node:crypto';
import { normaliseForIndex, type CatalogEntry } from '../domain/catalog';
import type { Keyring } from '../runtime/keyring';

/**
 * Keyed HMAC-SHA256 over `field NUL normalised value`, normalised as the field's catalog entry says, so a
 * field an operator adds to the catalog is searched the way its entry declares, not by its name.
 */
export const fieldBlindIndex = (
  keyring: Pick<Keyring, 'blindIndexKey'>,
  field: string,
  entry: Pick<CatalogEntry, 'normalise'>,
  value: string,
): string =>
  createHmac('sha256', keyring.blindIndexKey)
    .update(`${field}\u0000${normaliseForIndex(entry.normalise, value)}`, 'utf8')
    .digest('hex');
