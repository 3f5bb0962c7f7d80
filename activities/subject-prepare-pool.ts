import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Catalog } from '../domain/catalog';
import type { LineBatch } from './import-staging';
import { prepareBatch, type PrepareDeps, type PreparedBatch } from './subject-prepare';

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

/** CUSTODIAN_IMPORT_THREADS, else one thread per core but one (the main thread reads and writes). */
export const defaultPrepareThreads = (env: NodeJS.ProcessEnv = process.env): number => {
  const configured = Number(env.CUSTODIAN_IMPORT_THREADS);
  if (env.CUSTODIAN_IMPORT_THREADS?.trim() && Number.isInteger(configured) && configured >= 0) return configured;
  return Math.max(1, availableParallelism() - 1);
};

// Structured clone delivers Uint8Array; COPY wants Buffer's hex encoding.
const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const revive = (batch: PreparedBatch): PreparedBatch => {
  for (const line of batch.valid) {
    const s = line.speculative;
    if (!s) continue;
    s.wrappedKey = asBuffer(s.wrappedKey);
    for (const f of s.fields) if (f.ciphertext) f.ciphertext = asBuffer(f.ciphertext);
  }
  return batch;
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
    thread.worker.on('message', (m: { id: number; prepared?: PreparedBatch; error?: string }) => {
      const task = thread.pending.get(m.id);
      thread.pending.delete(m.id);
      if (thread.pending.size === 0) thread.worker.unref();
      if (m.prepared) task?.resolve(revive(m.prepared));
      else task?.reject(new Error(`preparing a batch failed: ${m.error}`));
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
