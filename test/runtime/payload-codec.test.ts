import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { AesGcmPayloadCodec, dataConverterFor } from '../../runtime/payload-codec';

const secretValue = { subjectId: 's-1', note: 'customer 王小明 phone 13800138000' };
const payload = (): Payload => defaultPayloadConverter.toPayload(secretValue);
const key = (keyId: string) => ({ keyId, key: randomBytes(32) });

describe('AesGcmPayloadCodec', () => {
  it('round-trips payloads, metadata included', async () => {
    const codec = new AesGcmPayloadCodec(key('k1'));
    const [encoded] = await codec.encode([payload()]);
    const [decoded] = await codec.decode([encoded!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual(secretValue);
    expect(Buffer.from(decoded!.metadata!.encoding!).toString()).toBe('json/plain');
    expect(await codec.encode([])).toEqual([]);
  });

  it('leaves no plaintext in the encoded payload', async () => {
    const [encoded] = await new AesGcmPayloadCodec(key('k1')).encode([payload()]);
    expect(Buffer.from(encoded!.metadata!.encoding!).toString()).toBe('binary/encrypted');
    expect(Buffer.from(encoded!.metadata!['encryption-key-id']!).toString()).toBe('k1');
    const bytes = Buffer.from(encoded!.data!);
    for (const fragment of ['13800138000', '王小明', 'json/plain', 'subjectId']) {
      expect(bytes.includes(Buffer.from(fragment))).toBe(false);
    }
  });

  it('fails clearly for an unknown key id, and for altered bytes', async () => {
    const [encoded] = await new AesGcmPayloadCodec(key('k1')).encode([payload()]);
    await expect(new AesGcmPayloadCodec(key('k2')).decode([encoded!])).rejects.toThrow(/codec key k1/);
    const tampered = { ...encoded!, data: Buffer.from(encoded!.data!) };
    tampered.data[20]! ^= 1;
    await expect(new AesGcmPayloadCodec(key('k1')).decode([tampered])).rejects.toThrow(/authentication/);
  });

  it('decodes payloads written under a retired key, and encodes under the current one', async () => {
    const old = key('k1');
    const [written] = await new AesGcmPayloadCodec(old).encode([payload()]);
    const rotated = new AesGcmPayloadCodec(key('k2'), new Map([[old.keyId, old.key]]));
    const [decoded] = await rotated.decode([written!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual(secretValue);
    const [fresh] = await rotated.encode([payload()]);
    expect(Buffer.from(fresh!.metadata!['encryption-key-id']!).toString()).toBe('k2');
  });

  it('passes through payloads that are not encrypted', async () => {
    const plain = payload();
    expect(await new AesGcmPayloadCodec(key('k1')).decode([plain])).toEqual([plain]);
  });

  it('is built from the keyring', async () => {
    const keyring = parseKeyring(generateKeyFile(), 'test');
    const [codec] = dataConverterFor(keyring).payloadCodecs;
    const [encoded] = await codec!.encode([payload()]);
    expect(Buffer.from(encoded!.metadata!['encryption-key-id']!).toString()).toBe(keyring.codec.keyId);
    expect(defaultPayloadConverter.fromPayload((await codec!.decode([encoded!]))[0]!)).toEqual(secretValue);
  });
});
