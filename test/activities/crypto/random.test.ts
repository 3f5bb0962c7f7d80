import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import { encryptField } from '../../../activities/crypto/field-cipher';
import { newDataKey } from '../../../activities/crypto/key-wrap';

it('never hands out the same nonce or data key twice, across refills of the random buffer', () => {
  const dek = newDataKey();
  const ref = { subjectId: randomUUID(), field: 'email', keyVersion: 1 };
  const nonces = new Set<string>();
  const keys = new Set<string>();
  // 12,000 nonces and 2,000 keys: 208,000 bytes, three refills of the 64 KiB buffer.
  for (let i = 0; i < 12_000; i++) nonces.add(encryptField(dek, ref, 'v').subarray(5, 17).toString('hex'));
  for (let i = 0; i < 2_000; i++) keys.add(newDataKey().toString('hex'));
  expect(nonces.size).toBe(12_000);
  expect(keys.size).toBe(2_000);
  const first = newDataKey();
  const second = newDataKey();
  // Each key is its own copy: taking more random bytes never changes a key already handed out.
  const copy = Buffer.from(first);
  for (let i = 0; i < 10_000; i++) newDataKey();
  expect(first.equals(copy)).toBe(true);
  expect(first.equals(second)).toBe(false);
});
