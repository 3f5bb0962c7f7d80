import { parentPort, workerData } from 'node:worker_threads';
import type { Keyring } from '../runtime/keyring';
import type { LineBatch } from './import-staging';
import { prepareBatch, type PrepareDeps } from './subject-prepare';
import { toWire, type ThreadData } from './subject-prepare-pool';

const data = workerData as ThreadData;
const deps: PrepareDeps = {
  // Preparing wraps data keys and computes blind indexes: the KEKs and the HMAC key are all it needs.
  keyring: {
    keks: new Map(data.keks.map(([version, key]) => [version, Buffer.from(key)])),
    currentKekVersion: data.currentKekVersion,
    blindIndexKey: Buffer.from(data.blindIndexKey),
  } as unknown as Keyring,
  catalog: data.catalog,
};

parentPort!.on('message', (task: { id: number; batch: LineBatch }) => {
  prepareBatch(deps, task.batch)
    .then(toWire)
    .then(
      // The bytes are transferred, not copied.
      (prepared) => parentPort!.postMessage({ id: task.id, prepared }, [prepared.bytes]),
      (err: unknown) =>
        parentPort!.postMessage({ id: task.id, error: err instanceof Error ? err.message : String(err) }),
    );
});
