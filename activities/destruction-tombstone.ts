import { createHmac, hkdfSync } from 'node:crypto';
import type { Keyring } from '../runtime/keyring';

export const TOMBSTONE_PREFIX = 'destroyed:';

const keys = new WeakMap<Buffer, Buffer>();
const tombstoneKey = ({ blindIndexKey }: Pick<Keyring, 'blindIndexKey'>) => {
  let key = keys.get(blindIndexKey);
  if (!key)
    keys.set(
      blindIndexKey,
      (key = Buffer.from(
        hkdfSync('sha256', blindIndexKey, Buffer.alloc(0), 'custodian/destroyed-external-ref/v1', 32),
      )),
    );
  return key;
};

/** What a destroyed subject keeps of its external reference: a keyed hash, so a later import of it is recognised. */
export const externalRefTombstone = (keyring: Pick<Keyring, 'blindIndexKey'>, externalRef: string): string =>
  `${TOMBSTONE_PREFIX}${createHmac('sha256', tombstoneKey(keyring)).update(externalRef, 'utf8').digest('hex')}`;
