import { connect as netConnect, type Socket } from 'node:net';
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import * as schema from './schema';

export type Db = PostgresJsDatabase<typeof schema>;
export interface Database {
  db: Db;
  sql: postgres.Sql;
  close(): Promise<void>;
}

/** What postgres.js hands a custom `socket` function: its parsed connection options. */
interface SocketTarget {
  host: string[];
  port: number[];
  path?: string | false;
}

/**
 * postgres.js leaves Nagle's algorithm on, so the small message that ends a COPY waits for the
 * server's delayed ACK: ~40 ms per COPY, measured on the import path. We hand it sockets with
 * TCP_NODELAY. The socket is returned while still connecting, so a refused or timed-out connection
 * takes postgres.js's own error path (it rejects the waiting queries); hosts of a multi-host URL
 * are tried in turn on successive connects, as postgres.js does itself.
 */
const noDelaySockets = () => {
  let next = 0;
  return ({ host, port, path }: SocketTarget): Socket => {
    if (path) return netConnect({ path });
    const i = next++ % host.length;
    return netConnect({ host: host[i], port: port[i] ?? port[0] ?? 5432, noDelay: true });
  };
};

export const connect = (url: string, options: { max?: number } = {}): Database => {
  // `socket` is a documented postgres.js option that its type declarations omit.
  const clientOptions = {
    max: options.max ?? 10,
    onnotice: () => {},
    connection: { application_name: 'custodian' },
    socket: noDelaySockets(),
  };
  const sql = postgres(url, clientOptions);
  return { db: drizzle(sql, { schema }), sql, close: () => sql.end({ timeout: 5 }) };
};
