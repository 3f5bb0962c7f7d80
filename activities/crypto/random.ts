import { randomFillSync } from 'node:crypto';

/*
 * Nonces and data keys come from a buffer of CSPRNG output (randomFillSync, 64 KiB at a time) instead
 * of one randomBytes call each: a call costs about as much as the AES-GCM encryption it feeds. Every
 * byte is handed out once: the offset only moves forward, taken bytes are copied out, and the buffer is
 * refilled from the CSPRNG (overwriting only bytes already taken) when too few remain. The buffer is
 * per thread (module state is not shared between worker threads).
 */
const RANDOM_POOL_BYTES = 64 * 1024;
const randomPool = Buffer.allocUnsafeSlow(RANDOM_POOL_BYTES);
let randomOffset = RANDOM_POOL_BYTES;

/** Copies `length` fresh CSPRNG bytes into `target` at `at`. */
export const fillRandom = (target: Buffer, at: number, length: number): void => {
  if (length > RANDOM_POOL_BYTES) {
    randomFillSync(target, at, length);
    return;
  }
  if (randomOffset + length > RANDOM_POOL_BYTES) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  randomPool.copy(target, at, randomOffset, randomOffset + length);
  // Taken bytes are wiped so that no copy of a key or nonce lingers in the buffer.
  randomPool.fill(0, randomOffset, randomOffset + length);
  randomOffset += length;
};
