import { isDeepStrictEqual } from 'node:util';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { prepareBatch, type PreparedBatch } from '../../activities/subject-prepare';
import { fromWire, toWire } from '../../activities/subject-prepare-pool';
import { defaultCatalog } from '../../domain/catalog';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { fakeSubject } from '../helpers/subject-files';

const keyring = parseKeyring(generateKeyFile(), 'test');

/** Through a real MessagePort, the way a preparing thread sends a batch: the bytes transferred. */
const send = (prepared: PreparedBatch): PreparedBatch => {
  const { port1, port2 } = new MessageChannel();
  try {
    const wire = toWire(prepared);
    port1.postMessage(wire, [wire.bytes]);
    return fromWire(receiveMessageOnPort(port2)!.message as ReturnType<typeof toWire>);
  } finally {
    port1.close();
  }
};

describe('prepared batches between threads', () => {
  it('arrive exactly as prepared: encrypted and plain fields, numbers, booleans, nulls, rejects, duplicates', async () => {
    const subjects = [0, 1, 2].map((i) => fakeSubject(i));
    const texts = [
      ...subjects.map((s) => JSON.stringify(s)),
      JSON.stringify({ ...subjects[0], fields: { ...subjects[0]!.fields, vip: true } }), // an in-file duplicate
      JSON.stringify({ externalRef: 'W-9', jurisdiction: 'EU', fields: { hobby: 'chess', score: -0.5 } }),
      'not json',
    ];
    const prepared = await prepareBatch(
      { keyring, catalog: defaultCatalog },
      {
        start: { offset: 0, line: 1 },
        end: { offset: 999, line: texts.length + 2 },
        atEnd: true,
        lines: [...texts.map((text, i) => ({ line: i + 1, text })), { line: 7, problem: 'invalid_encoding' as const }],
      },
    );
    expect(prepared.valid.filter((v) => !v.speculative)).toHaveLength(1);
    const fields = prepared.valid.flatMap((v) => v.speculative?.fields ?? []);
    expect(fields.some((f) => f.ciphertext === null && f.plainValue !== null)).toBe(true);
    expect(fields.some((f) => f.blindIndex !== null)).toBe(true);

    const received = send(prepared);
    expect(isDeepStrictEqual(received, prepared)).toBe(true);
    const buffers = received.valid.flatMap((v) =>
      v.speculative ? [v.speculative.wrappedKey, ...v.speculative.fields.flatMap((f) => f.ciphertext ?? [])] : [],
    );
    // Buffers, not bare Uint8Arrays: the COPY writer hex-encodes them with toString('hex').
    for (const b of buffers) expect(Buffer.isBuffer(b)).toBe(true);
  });

  it('carries an empty batch and one with only rejects', async () => {
    const empty: PreparedBatch = {
      start: { offset: 0, line: 1 },
      end: { offset: 0, line: 1 },
      atEnd: true,
      lines: 0,
      valid: [],
      rejects: [],
      unclassified: [],
    };
    expect(send(empty)).toEqual(empty);
    const rejected = await prepareBatch(
      { keyring, catalog: defaultCatalog },
      { start: { offset: 0, line: 1 }, end: { offset: 5, line: 2 }, atEnd: false, lines: [{ line: 1, text: '{' }] },
    );
    expect(send(rejected)).toEqual(rejected);
  });
});
