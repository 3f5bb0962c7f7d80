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

/** The session is gone: the server ended it (FATAL, e.g. an idle-in-transaction timeout) or the socket closed. */
const isSessionLoss = (err: unknown): boolean => {
  const e = err as { code?: string; severity?: string } | undefined;
  return (
    e?.severity === 'FATAL' ||
    e?.code === 'CONNECTION_CLOSED' ||
    e?.code === 'CONNECTION_DESTROYED' ||
    e?.code === 'CONNECTION_ENDED' ||
    /^(08|57P)/.test(e?.code ?? '')
  );
};

type Begin = (options: string, fn: (tx: postgres.TransactionSql) => unknown) => Promise<unknown>;

/**
 * postgres.js 3.4.9 (porsager/postgres#1133, #1208, #1216, fixes unreleased): when the server ends a
 * session inside `begin` (an idle-in-transaction or statement timeout, a terminated backend), the
 * transaction's own ROLLBACK or COMMIT is then written to the dead connection, which throws from a
 * setImmediate (the process dies) and leaves the connection unusable. `begin` already rejects with
 * CONNECTION_CLOSED; we keep such a transaction's callback from ever settling, so postgres.js never
 * writes that statement, and refuse any further query the callback makes on it.
 */
const guardTransactions = (sql: postgres.Sql): void => {
  const begin = sql.begin.bind(sql) as unknown as Begin;
  const guarded = (...args: unknown[]) => {
    const [options, fn] = (typeof args[0] === 'string' ? args : ['', args[0]]) as [string, Parameters<Begin>[1]];
    let lost = false;
    const dead = () =>
      Promise.reject(Object.assign(new Error("the transaction's session has ended"), { code: 'CONNECTION_CLOSED' }));
    const outcome = begin(options, (tx) => {
      const live = new Proxy(tx, {
        apply: (target, self, args) => (lost ? dead() : Reflect.apply(target, self, args)),
        get: (target, key, receiver) => {
          const value = Reflect.get(target, key, receiver) as unknown;
          if (key !== 'unsafe' || typeof value !== 'function') return value;
          return (...args: unknown[]) => (lost ? dead() : Reflect.apply(value, target, args));
        },
      });
      return new Promise((resolve, reject) => {
        // After one turn of the event loop, a closed connection has rejected `outcome` and set `lost`.
        const settle = (finish: () => void) => setImmediate(() => lost || finish());
        Promise.resolve()
          .then(() => {
            const x = fn(live);
            return Array.isArray(x) ? Promise.all(x) : x;
          })
          .then(
            (value) => settle(() => resolve(value)),
            (err: unknown) => {
              if (isSessionLoss(err)) lost = true;
              settle(() => reject(err));
            },
          );
      });
    });
    outcome.catch((err: unknown) => {
      if (isSessionLoss(err)) lost = true;
    });
    return outcome;
  };
  (sql as unknown as { begin: unknown }).begin = guarded;
};

export interface PoolOptions {
  /** Connections in this pool (default 10). */
  max?: number;
  /** Shown in pg_stat_activity, so an operator can tell the API's sessions from the worker's. */
  applicationName?: string;
  /** The server cancels a statement running longer than this (0: no limit). */
  statementTimeoutMs?: number;
  /** The server ends a session left idle inside a transaction longer than this (0: no limit). */
  idleInTransactionTimeoutMs?: number;
}

export const connect = (url: string, options: PoolOptions = {}): Database => {
  // Startup parameters: the server enforces them per session, whatever the client then does or fails to do.
  const connection: Record<string, string | number> = { application_name: options.applicationName ?? 'custodian' };
  if (options.statementTimeoutMs !== undefined) connection.statement_timeout = options.statementTimeoutMs;
  if (options.idleInTransactionTimeoutMs !== undefined) {
    connection.idle_in_transaction_session_timeout = options.idleInTransactionTimeoutMs;
  }
  // `socket` is a documented postgres.js option that its type declarations omit.
  const clientOptions = {
    max: options.max ?? 10,
    onnotice: () => {},
    connection,
    socket: noDelaySockets(),
  };
  const sql = postgres(url, clientOptions);
  guardTransactions(sql);
  return { db: drizzle(sql, { schema }), sql, close: () => sql.end({ timeout: 5 }) };
};
