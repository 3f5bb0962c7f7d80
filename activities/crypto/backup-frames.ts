import { createCipheriv, createDecipheriv } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { RestoreTestReason } from '../../domain/backup';
import type { Keyring } from '../../runtime/keyring';
import {
  AadPurpose,
  KEY_BYTES,
  NONCE_BYTES,
  open,
  requireKey,
  seal,
  stringBytes,
  TAG_BYTES,
  writeString,
} from './aead';
import { CryptoError } from './errors';

/*
 * A backup file is a sequence of AES-256-GCM frames under the backup's own data key, nothing else: frame i holds
 * plaintext bytes [i·F, (i+1)·F) (F = frameBytes; the last frame may be shorter) followed by its 16-byte tag.
 *   nonce(i, final) = final (1 byte: 0 or 1) | 0x000000 | i (uint64 BE)
 *   AAD(i, final)   = 0x62 'b' | len(backupId) (uint16 BE) | backupId (UTF-8) | i (uint64 BE) | final (1 byte)
 * The key is fresh for every attempt at every backup, so the counter nonce never repeats under a key. A frame
 * moved to another position, cut off or followed by more data fails its tag, and the final flag makes a file cut
 * at a frame boundary fail too.
 */

/** The key-wrap AAD: 0x42 'B' | kekVersion (uint32 BE) | len(backupId) (uint16 BE) | backupId (UTF-8). */
const keyWrapAad = (backupId: string, kekVersion: number): Buffer => {
  const length = stringBytes(backupId, 'backup ID');
  const aad = Buffer.allocUnsafe(1 + 4 + 2 + length);
  aad.writeUInt8(AadPurpose.backupKey, 0);
  aad.writeUInt32BE(kekVersion, 1);
  writeString(aad, 5, backupId, length);
  return aad;
};

/** Wraps a backup's data key under the current KEK, bound to the backup ID. */
export const wrapBackupKey = (keyring: Keyring, backupId: string, key: Buffer) => {
  requireKey(key, 'backup key');
  const kekVersion = keyring.currentKekVersion;
  const kek = keyring.keks.get(kekVersion);
  if (!kek) throw new CryptoError('UNKNOWN_KEK_VERSION', `current KEK version ${kekVersion} is not in the keyring`);
  return { wrappedKey: seal(kek, keyWrapAad(backupId, kekVersion), key), kekVersion };
};

export const unwrapBackupKey = (
  keyring: Keyring,
  backupId: string,
  wrapped: { wrappedKey: Buffer; kekVersion: number },
): Buffer => {
  const kek = keyring.keks.get(wrapped.kekVersion);
  if (!kek) throw new CryptoError('UNKNOWN_KEK_VERSION', `KEK version ${wrapped.kekVersion} is not in the keyring`);
  const key = open(kek, keyWrapAad(backupId, wrapped.kekVersion), wrapped.wrappedKey);
  if (!key || key.length !== KEY_BYTES)
    throw new CryptoError('UNWRAP_FAILED', `the key of backup ${backupId} failed to unwrap (wrong KEK or altered)`);
  return key;
};

const frameNonce = (frame: number, final: boolean): Buffer => {
  const nonce = Buffer.alloc(NONCE_BYTES);
  nonce.writeUInt8(final ? 1 : 0, 0);
  nonce.writeBigUInt64BE(BigInt(frame), 4);
  return nonce;
};

const frameAad = (backupId: string, frame: number, final: boolean): Buffer => {
  const length = stringBytes(backupId, 'backup ID');
  const aad = Buffer.allocUnsafe(1 + 2 + length + 8 + 1);
  aad.writeUInt8(AadPurpose.backupFrame, 0);
  const at = writeString(aad, 1, backupId, length);
  aad.writeBigUInt64BE(BigInt(frame), at);
  aad.writeUInt8(final ? 1 : 0, at + 8);
  return aad;
};

export const sealFrame = (key: Buffer, backupId: string, frame: number, final: boolean, plaintext: Buffer): Buffer => {
  const cipher = createCipheriv('aes-256-gcm', key, frameNonce(frame, final), { authTagLength: TAG_BYTES });
  cipher.setAAD(frameAad(backupId, frame, final));
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
};

/** The plaintext, or undefined when the tag does not verify for this position and flag. */
export const openFrame = (
  key: Buffer,
  backupId: string,
  frame: number,
  final: boolean,
  sealed: Buffer,
): Buffer | undefined => {
  if (sealed.length < TAG_BYTES) return undefined;
  const decipher = createDecipheriv('aes-256-gcm', key, frameNonce(frame, final), { authTagLength: TAG_BYTES });
  decipher.setAAD(frameAad(backupId, frame, final));
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
  } catch {
    return undefined;
  }
};

/** Seals a byte stream into frames; counts them. */
export class FrameSealer extends Transform {
  frames = 0;
  private readonly buffer: Buffer;
  private filled = 0;

  constructor(
    private readonly key: Buffer,
    private readonly backupId: string,
    private readonly frameBytes: number,
  ) {
    super();
    this.buffer = Buffer.allocUnsafe(frameBytes);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    let at = 0;
    while (at < chunk.length) {
      // A full frame is sealed only once more bytes arrive: until then it may be the final one.
      if (this.filled === this.frameBytes) this.emit_(false);
      const take = Math.min(this.frameBytes - this.filled, chunk.length - at);
      chunk.copy(this.buffer, this.filled, at, at + take);
      this.filled += take;
      at += take;
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    this.emit_(true);
    done();
  }

  private emit_(final: boolean) {
    this.push(sealFrame(this.key, this.backupId, this.frames, final, this.buffer.subarray(0, this.filled)));
    this.frames += 1;
    this.filled = 0;
  }
}

/** A frame that does not authenticate, with the precise reason. */
export class FrameError extends Error {
  override name = 'FrameError';
  constructor(readonly reason: RestoreTestReason) {
    super(`backup frame check failed: ${reason.code}`);
  }
}

/** How far from its position a frame is looked for when it fails (a swap or a move of a few frames). */
const SEARCH_WINDOW = 16;

/**
 * Opens a stream of frames, passing on only authenticated plaintext. A frame that fails is diagnosed: the last
 * frame sealed as non-final (truncated), a non-final frame sealed as final (data after the end), a frame sealed
 * for another position nearby (reordered), or plain tampering; then the stream fails with a FrameError.
 */
export class FrameOpener extends Transform {
  frames = 0;
  bytesIn = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly sealedBytes: number;

  constructor(
    private readonly key: Buffer,
    private readonly backupId: string,
    frameBytes: number,
    /** The ciphertext size the manifest states, to tell a cut file from a damaged one. */
    private readonly expectedBytes?: number,
  ) {
    super();
    this.sealedBytes = frameBytes + TAG_BYTES;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytesIn += chunk.length;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    try {
      // Strictly more than one frame buffered: the frame is not the last one, so it must be sealed as non-final.
      while (this.pendingBytes > this.sealedBytes) this.openNext(this.takeBytes(this.sealedBytes), false);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.openNext(this.takeBytes(this.pendingBytes), true);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  private takeBytes(bytes: number): Buffer {
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = bytes < all.length ? [all.subarray(bytes)] : [];
    this.pendingBytes = all.length - bytes;
    return all.subarray(0, bytes);
  }

  private openNext(sealed: Buffer, last: boolean) {
    const frame = this.frames;
    const plain = openFrame(this.key, this.backupId, frame, last, sealed);
    if (!plain) throw new FrameError(this.diagnose(frame, last, sealed));
    this.frames += 1;
    if (plain.length > 0) this.push(plain);
  }

  private diagnose(frame: number, last: boolean, sealed: Buffer): RestoreTestReason {
    const opens = (at: number, final: boolean) =>
      at >= 0 && openFrame(this.key, this.backupId, at, final, sealed) !== undefined;
    const cut = this.expectedBytes !== undefined && this.bytesIn < this.expectedBytes;
    if (last && (opens(frame, false) || cut))
      return {
        code: 'truncated',
        frame,
        expectedBytes: this.expectedBytes ?? this.bytesIn,
        actualBytes: this.bytesIn,
      };
    if (!last && opens(frame, true)) return { code: 'data-after-final-frame', frame };
    // A short final frame with more bytes after it: the frame ends where the manifest says the file ends.
    const end = this.expectedBytes === undefined ? 0 : this.expectedBytes - frame * this.sealedBytes;
    if (
      end >= TAG_BYTES &&
      end < sealed.length &&
      openFrame(this.key, this.backupId, frame, true, sealed.subarray(0, end))
    )
      return { code: 'data-after-final-frame', frame };
    for (let distance = 1; distance <= SEARCH_WINDOW; distance++) {
      for (const at of [frame + distance, frame - distance]) {
        if (opens(at, false) || opens(at, true)) return { code: 'frame-out-of-order', frame, sealedAs: at };
      }
    }
    return { code: 'frame-authentication-failed', frame };
  }
}
