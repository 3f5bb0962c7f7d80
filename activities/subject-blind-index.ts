import { normaliseForIndex, type CatalogEntry } from '../domain/catalog';
import type { Keyring } from '../runtime/keyring';
import { blindIndex } from './crypto/blind-index';

/**
 * The blind index of a field's value, normalised as the field's catalog entry says, so a field an operator
 * adds to the catalog is searched the way its entry declares, not by its name.
 */
export const fieldBlindIndex = (
  keyring: Pick<Keyring, 'blindIndexKey'>,
  field: string,
  entry: Pick<CatalogEntry, 'normalise'>,
  value: string,
): string => blindIndex(keyring, field, normaliseForIndex(entry.normalise, value));
