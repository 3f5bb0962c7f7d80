import { createCipheriv, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import {
  FrameError,
  FrameOpener,
  FrameSealer,
  sealFrame,
  unwrapBackupKey,
  wrapBackupKey,
} from '../../../activities/crypto/backup-frames';
import { newDataKey } from '../../../activities/crypto/key-wrap';
import type { RestoreTestReason } from '../../../domain/backup';
import { lengthPrefixed, newKeyring, rejects, uint32 } from './helpers';

const FRAME = 32;
const SEALED = FRAME + 16;
const backupId = '3f1c7a52-9d0e-4b1a-8c53-6a2f0e9b1d44';

const collect = async (source: Iterable<Buffer> | AsyncIterable<Buffer>, transform: FrameSealer | FrameOpener) => {
  const out: Buffer[] = [];
  await pipeline(Readable.from(source), transform, async (s: AsyncIterable<Buffer>) => {
    for await (const chunk of s) out.push(chunk);
  });
  return Buffer.concat(out);
};

const seal = (key: Buffer, plain: Buffer) =>
  collect([plain.subarray(0, 5), plain.subarray(5)], new FrameSealer(key, backupId, FRAME));
const open = (key: Buffer, sealed: Buffer, expectedBytes?: number, id = backupId) =>
  collect(
    // Odd chunk sizes: frames straddle reads.
    Array.from({ length: Math.ceil(sealed.length / 7) }, (_, i) => sealed.subarray(i * 7, i * 7 + 7)),
    new FrameOpener(key, id, FRAME, expectedBytes),
  );
const reasonOf = async (run: Promise<unknown>): Promise<RestoreTestReason> => {
  const err = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FrameError);
  return (err as FrameError).reason;
};

describe('backup frames', () => {
  it('round-trips any length, sealing the last frame as final', async () => {
    const key = newDataKey();
    for (const length of [0, 1, FRAME - 1, FRAME, FRAME + 1, 3 * FRAME, 3 * FRAME + 5]) {
      const plain = randomBytes(length);
      const sealed = await seal(key, plain);
      expect(sealed.length).toBe(Math.max(1, Math.ceil(length / FRAME)) * 16 + length);
      expect((await open(key, sealed)).equals(plain)).toBe(true);
    }
  });

  it('binds nonce and AAD as documented: final flag, frame number, backup ID', () => {
    const key = newDataKey();
    const plain = randomBytes(FRAME);
    const nonce = Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.from('0000000000000002', 'hex')]);
    const aad = Buffer.concat([
      Buffer.from([0x62]),
      lengthPrefixed(backupId),
      Buffer.from('0000000000000002', 'hex'),
      Buffer.from([1]),
    ]);
    const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 }).setAAD(aad);
    const expected = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    expect(sealFrame(key, backupId, 2, true, plain).equals(expected)).toBe(true);
  });

  it('names what happened to a damaged file', async () => {
    const key = newDataKey();
    const sealed = await seal(key, randomBytes(5 * FRAME + 3));
    const flipped = Buffer.from(sealed);
    flipped[2 * SEALED + 3]! ^= 1;
    expect(await reasonOf(open(key, flipped))).toEqual({ code: 'frame-authentication-failed', frame: 2 });

    expect(await reasonOf(open(key, sealed.subarray(0, 3 * SEALED)))).toEqual({
      code: 'truncated',
      frame: 2,
      expectedBytes: 3 * SEALED,
      actualBytes: 3 * SEALED,
    });
    expect(await reasonOf(open(key, sealed.subarray(0, 3 * SEALED + 9), sealed.length))).toEqual({
      code: 'truncated',
      frame: 3,
      expectedBytes: sealed.length,
      actualBytes: 3 * SEALED + 9,
    });

    const swapped = Buffer.from(sealed);
    sealed.copy(swapped, SEALED, 3 * SEALED, 4 * SEALED);
    sealed.copy(swapped, 3 * SEALED, SEALED, 2 * SEALED);
    expect(await reasonOf(open(key, swapped))).toEqual({ code: 'frame-out-of-order', frame: 1, sealedAs: 3 });

    const appended = Buffer.concat([sealed, sealed.subarray(0, SEALED)]);
    expect(await reasonOf(open(key, appended, sealed.length))).toEqual({ code: 'data-after-final-frame', frame: 5 });
    const full = await seal(key, randomBytes(2 * FRAME));
    expect(await reasonOf(open(key, Buffer.concat([full, full.subarray(0, 20)])))).toEqual({
      code: 'data-after-final-frame',
      frame: 1,
    });

    expect(await reasonOf(open(key, sealed, undefined, '00000000-0000-4000-8000-000000000000'))).toEqual({
      code: 'frame-authentication-failed',
      frame: 0,
    });
    expect(await reasonOf(open(newDataKey(), sealed))).toEqual({ code: 'frame-authentication-failed', frame: 0 });
  });

  it('wraps the backup key under the KEK, bound to the backup ID and KEK version', () => {
    const keyring = newKeyring();
    const key = newDataKey();
    const wrapped = wrapBackupKey(keyring, backupId, key);
    expect(wrapped.wrappedKey.includes(key)).toBe(false);
    expect(unwrapBackupKey(keyring, backupId, wrapped).equals(key)).toBe(true);
    rejects('UNWRAP_FAILED', () => unwrapBackupKey(keyring, '00000000-0000-4000-8000-000000000000', wrapped));
    rejects('UNKNOWN_KEK_VERSION', () => unwrapBackupKey(keyring, backupId, { ...wrapped, kekVersion: 7 }));
    expect(uint32(wrapped.kekVersion).length).toBe(4);
  });
});
