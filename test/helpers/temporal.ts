import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { inject } from 'vitest';
import { generateKeyFile, parseKeyring, type Keyring } from '../../runtime/keyring';
import { dataConverterFor } from '../../runtime/payload-codec';

export interface TestTemporal {
  client: Client;
  nativeConnection: NativeConnection;
  keyring: Keyring;
  dataConverter: ReturnType<typeof dataConverterFor>;
  /** A task queue of its own for each test, so workers of different tests never share work. */
  taskQueue(prefix: string): string;
  close(): Promise<void>;
}

/** Connects to the run's dev server with a client and worker connection that share one keyring and codec. */
export const connectTestTemporal = async (keyring: Keyring = parseKeyring(generateKeyFile(), 'test')) => {
  const address = inject('temporalAddress');
  const dataConverter = dataConverterFor(keyring);
  const connection = await Connection.connect({ address });
  const nativeConnection = await NativeConnection.connect({ address });
  const client = new Client({ connection, namespace: 'default', dataConverter });
  return {
    client,
    nativeConnection,
    keyring,
    dataConverter,
    taskQueue: (prefix: string) => `${prefix}-${randomUUID()}`,
    close: async () => {
      await nativeConnection.close();
      await connection.close();
    },
  } satisfies TestTemporal;
};
