import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Catalog, Classification } from '../domain/catalog';
import type { LineBatch } from './import-staging';
import { prepareBatch, type PrepareDeps, type PreparedBatch, type ValidLine } from './subject-prepare';
import type { FieldRow, SubjectRecord } from './subject-writer';

/** What a preparing thread is started with. */
export interface ThreadData {
  keks: [number, Uint8Array][];
  currentKekVersion: number;
  blindIndexKey: Uint8Array;
  catalog: Catalog;
}

export interface PreparePool {
  /** How many batches can be prepared at once: the depth of the import's read-ahead. */
  readonly size: number;
  prepare(batch: LineBatch): Promise<PreparedBatch>;
  close(): Promise<void>;
}

const THREAD_ENTRY = new URL('./subject-prepare-thread.mjs', import.meta.url);

/** The configured count (CUSTODIAN_IMPORT_THREADS), else one thread per core but one (the main thread reads and writes). */
export const defaultPrepareThreads = (configured?: number): number =>
  configured ?? Math.max(1, availableParallelism() - 1);

/**
 * A prepared batch as it crosses between threads. Structured clone of the new subjects' rows (about a
 * dozen small objects and six Buffers per subject, each object's keys written out again) cost more
 * than the COPY that writes them, on the main thread. So the rows travel in columns: their strings and
 * numbers in two flat arrays, every wrapped key and ciphertext in one ArrayBuffer that is transferred,
 * not copied. The lines themselves (line number, parsed subject, values) are still cloned as they are.
 */
export interface WireBatch {
  batch: Omit<PreparedBatch, 'valid'> & { valid: Omit<ValidLine, 'speculative'>[] };
  /** Per speculative subject: id, externalRef, jurisdiction, locale, retentionUntil; per field: field, classification, valueType, plainValue, blindIndex. */
  strings: (string | null)[];
  /** Per valid line: 1 with a speculative subject, else 0; then kekVersion, wrapped-key length, field count; per field: classified (0/1), keyVersion (−1: null), ciphertext length (−1: null). */
  numbers: number[];
  bytes: ArrayBuffer;
}

/** The sending side (a preparing thread); `bytes` is to be transferred. */
export const toWire = (prepared: PreparedBatch): WireBatch => {
  let total = 0;
  for (const { speculative: s } of prepared.valid) {
    if (!s) continue;
    total += s.wrappedKey.length;
    for (const f of s.fields) total += f.ciphertext?.length ?? 0;
  }
  const bytes = new ArrayBuffer(total);
  const view = new Uint8Array(bytes);
  const strings: (string | null)[] = [];
  const numbers: number[] = [];
  const valid: Omit<ValidLine, 'speculative'>[] = [];
  let at = 0;
  const put = (data: Uint8Array) => {
    view.set(data, at);
    at += data.length;
  };
  for (const v of prepared.valid) {
    valid.push({ line: v.line, subject: v.subject, values: v.values });
    const s = v.speculative;
    if (!s) {
      numbers.push(0);
      continue;
    }
    const { id, externalRef, jurisdiction, locale, retentionUntil } = s.subject;
    strings.push(id, externalRef, jurisdiction, locale, retentionUntil);
    numbers.push(1, s.kekVersion, s.wrappedKey.length, s.fields.length);
    put(s.wrappedKey);
    for (const f of s.fields) {
      strings.push(f.field, f.classification, f.valueType, f.plainValue, f.blindIndex);
      numbers.push(f.classified ? 1 : 0, f.keyVersion ?? -1, f.ciphertext ? f.ciphertext.length : -1);
      if (f.ciphertext) put(f.ciphertext);
    }
  }
  return { batch: { ...prepared, valid }, strings, numbers, bytes };
};

/** The receiving side (the main thread): the PreparedBatch again, its Buffers views of the transferred bytes. */
export const fromWire = (wire: WireBatch): PreparedBatch => {
  const { strings, numbers, bytes } = wire;
  let si = 0;
  let ni = 0;
  let at = 0;
  const take = (length: number): Buffer => {
    const b = Buffer.from(bytes, at, length);
    at += length;
    return b;
  };
  const valid: ValidLine[] = wire.batch.valid;
  for (const v of valid) {
    if (numbers[ni++] === 0) {
      v.speculative = undefined;
      continue;
    }
    const subject: SubjectRecord = {
      id: strings[si++]!,
      externalRef: strings[si++]!,
      jurisdiction: strings[si++]!,
      locale: strings[si++]!,
      retentionUntil: strings[si++] ?? null,
    };
    const kekVersion = numbers[ni++]!;
    const wrappedKey = take(numbers[ni++]!);
    const fields: FieldRow[] = Array.from({ length: numbers[ni++]! });
    for (let i = 0; i < fields.length; i++) {
      const field = strings[si++]!;
      const classification = strings[si++] as Classification;
      const valueType = strings[si++] as FieldRow['valueType'];
      const plainValue = strings[si++] ?? null;
      const blindIndex = strings[si++] ?? null;
      const classified = numbers[ni++] === 1;
      const keyVersion = numbers[ni++]!;
      const length = numbers[ni++]!;
      fields[i] = {
        field,
        classification,
        classified,
        valueType,
        keyVersion: keyVersion < 0 ? null : keyVersion,
        ciphertext: length < 0 ? null : take(length),
        plainValue,
        blindIndex,
      };
    }
    v.speculative = { subject, wrappedKey, kekVersion, fields };
  }
  if (si !== strings.length || ni !== numbers.length || at !== bytes.byteLength) {
    throw new Error('a prepared batch arrived malformed');
  }
  return wire.batch;
};

interface Thread {
  worker: Worker;
  pending: Map<number, { resolve(b: PreparedBatch): void; reject(e: Error): void }>;
}

/**
 * Parsing, validation and encryption (the CPU-heavy part of an import) in worker threads, so that
 * they run beside the main thread's reads and COPYs. With `threads` 0, batches are prepared inline.
 */
export const createPreparePool = (d: PrepareDeps, threads: number): PreparePool => {
  if (threads <= 0) return { size: 1, prepare: (batch) => prepareBatch(d, batch), close: async () => {} };
  const data: ThreadData = {
    keks: [...d.keyring.keks],
    currentKekVersion: d.keyring.currentKekVersion,
    blindIndexKey: d.keyring.blindIndexKey,
    catalog: d.catalog,
  };
  const live: (Thread | undefined)[] = Array.from({ length: threads }, () => undefined);
  let nextId = 0;

  const start = (slot: number): Thread => {
    const thread: Thread = { worker: new Worker(THREAD_ENTRY, { workerData: data }), pending: new Map() };
    const fail = (err: Error) => {
      if (live[slot] === thread) live[slot] = undefined;
      for (const task of thread.pending.values()) task.reject(err);
      thread.pending.clear();
    };
    thread.worker.on('message', (m: { id: number; prepared?: WireBatch; error?: string }) => {
      const task = thread.pending.get(m.id);
      thread.pending.delete(m.id);
      if (thread.pending.size === 0) thread.worker.unref();
      if (!m.prepared) {
        task?.reject(new Error(`preparing a batch failed: ${m.error}`));
        return;
      }
      try {
        task?.resolve(fromWire(m.prepared));
      } catch (err) {
        task?.reject(err as Error);
      }
    });
    thread.worker.on('error', fail);
    thread.worker.on('exit', (code) => fail(new Error(`a preparing thread exited with code ${code}`)));
    thread.worker.unref();
    live[slot] = thread;
    return thread;
  };

  return {
    size: threads,
    prepare(batch) {
      const slots = live.map((t, i) => ({ i, load: t?.pending.size ?? 0 }));
      const { i } = slots.reduce((a, b) => (b.load < a.load ? b : a));
      const thread = live[i] ?? start(i);
      const id = nextId++;
      return new Promise<PreparedBatch>((resolve, reject) => {
        thread.pending.set(id, { resolve, reject });
        // Referenced while it has work, so a process waiting only on an import does not exit.
        thread.worker.ref();
        thread.worker.postMessage({ id, batch });
      });
    },
    async close() {
      await Promise.all(live.map((t) => t?.worker.terminate()));
      live.fill(undefined);
    },
  };
};
