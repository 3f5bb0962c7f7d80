import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import {
  METADATA_ENCODING_KEY,
  ValueError,
  type DataConverter,
  type Payload,
  type PayloadCodec,
} from '@temporalio/common';
// @temporalio/proto is CommonJS: Node's ESM loader exposes it only as a default export.
import proto from '@temporalio/proto';
import type { Keyring } from './keyring';

const { Payload: PayloadMessage } = proto.temporal.api.common.v1;

const ENCODING = 'binary/encrypted';
const KEY_ID = 'encryption-key-id';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

const utf8 = (s: string) => Buffer.from(s, 'utf8');
const text = (bytes: Uint8Array | null | undefined) => (bytes ? Buffer.from(bytes).toString('utf8') : undefined);

/**
 * Encrypts every Temporal payload (workflow inputs, results, signals, history) with AES-256-GCM, so the
 * Temporal service never stores readable data. The key ID is bound as AAD and picks the key on decode.
 */
export class AesGcmPayloadCodec implements PayloadCodec {
  private readonly current: { keyId: string; key: Buffer };
  private readonly keys: ReadonlyMap<string, Buffer>;

  /** `current` encrypts; it and `retired` (earlier codec keys by keyId) decrypt. */
  constructor(current: { keyId: string; key: Buffer }, retired: ReadonlyMap<string, Buffer> = new Map()) {
    for (const [keyId, key] of [[current.keyId, current.key] as const, ...retired]) {
      if (key.length !== 32) throw new ValueError(`payload codec key ${keyId} must be 32 bytes`);
    }
    this.current = current;
    this.keys = new Map([...retired, [current.keyId, current.key]]);
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const { keyId, key } = this.current;
    return payloads.map((payload) => {
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES }).setAAD(utf8(keyId));
      const plaintext = PayloadMessage.encode(payload).finish();
      return {
        metadata: { [METADATA_ENCODING_KEY]: utf8(ENCODING), [KEY_ID]: utf8(keyId) },
        data: Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (text(payload.metadata?.[METADATA_ENCODING_KEY]) !== ENCODING) return payload;
      const keyId = text(payload.metadata?.[KEY_ID]);
      if (!keyId) throw new ValueError('encrypted payload has no encryption-key-id');
      const key = this.keys.get(keyId);
      if (!key) {
        throw new ValueError(
          `payload was encrypted with codec key ${keyId}, which this keyring lacks; add it to retiredCodecKeys`,
        );
      }
      const data = Buffer.from(payload.data ?? new Uint8Array());
      if (data.length < NONCE_BYTES + TAG_BYTES) throw new ValueError('encrypted payload is truncated');
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, NONCE_BYTES), {
        authTagLength: TAG_BYTES,
      }).setAAD(utf8(keyId));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      let plaintext: Buffer;
      try {
        plaintext = Buffer.concat([
          decipher.update(data.subarray(NONCE_BYTES, data.length - TAG_BYTES)),
          decipher.final(),
        ]);
      } catch {
        throw new ValueError(`encrypted payload failed authentication under codec key ${keyId}`);
      }
      return PayloadMessage.decode(plaintext);
    });
  }
}

/**
 * DefaultFailureConverter({ encodeCommonAttributes: true }): failure messages and stack traces travel as a
 * payload, so the codec encrypts them too. A path, because the workflow bundle has to include it.
 */
export const failureConverterPath = fileURLToPath(new URL('./failure-converter.cjs', import.meta.url));

/**
 * The data converter for clients and workers: the same on both sides, or neither can read the other. A
 * prebuilt workflow bundle needs `failureConverterPath` passed to bundleWorkflowCode as well.
 */
export const dataConverterFor = (keyring: Keyring) =>
  ({
    payloadCodecs: [new AesGcmPayloadCodec(keyring.codec, keyring.retiredCodecKeys)],
    failureConverterPath,
  }) satisfies DataConverter;
