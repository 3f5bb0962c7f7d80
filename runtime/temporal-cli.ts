import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Later CLI tags carry a `replace` directive, which `go install pkg@version` refuses. */
export const TEMPORAL_CLI_VERSION = '1.5.1';

export type TemporalCliSource = 'TEMPORAL_CLI_PATH' | 'PATH' | 'cache' | 'go install' | 'sdk download';
export interface ResolvedTemporalCli {
  /** Absent when the SDK is to download the binary itself. */
  path?: string;
  source: TemporalCliSource;
}

type Say = (line: string) => void;

const isExecutable = (path: string): boolean => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

const onPath = (name: string, env: NodeJS.ProcessEnv): string | undefined =>
  (env.PATH ?? '')
    .split(delimiter)
    .filter(Boolean)
    .map((dir) => join(dir, name))
    .find(isExecutable);

export const temporalCacheDir = (env: NodeJS.ProcessEnv = process.env): string =>
  join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'custodian', 'temporal', TEMPORAL_CLI_VERSION);

/** `go install` into the cache, relaying progress: it compiles a few hundred packages, minutes on 2 cores. */
const goInstall = async (cacheDir: string, go: string, say: Say): Promise<string> => {
  const staging = join(cacheDir, `.staging-${process.pid}`);
  mkdirSync(staging, { recursive: true });
  say(`Temporal CLI: building temporal@v${TEMPORAL_CLI_VERSION} with 'go install' into ${cacheDir} (a few minutes)…`);
  const started = Date.now();
  try {
    await build(go, staging, say, started);
    renameSync(join(staging, 'temporal'), join(cacheDir, 'temporal'));
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  const target = join(cacheDir, 'temporal');
  say(`Temporal CLI: built in ${Math.round((Date.now() - started) / 1000)} s → ${target}`);
  return target;
};

const build = (go: string, staging: string, say: Say, started: number) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn(go, ['install', '-v', `github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}`], {
      env: { ...process.env, GOBIN: staging, GOFLAGS: process.env.GOFLAGS ?? '-trimpath' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let packages = 0;
    let lastSaid = 0;
    let tail = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      tail = (tail + chunk).slice(-4000);
      packages += chunk.split('\n').filter((l) => l && !l.startsWith('go: downloading')).length;
      if (Date.now() - lastSaid > 15_000) {
        lastSaid = Date.now();
        say(
          `Temporal CLI: still building, ${packages} packages compiled, ${Math.round((Date.now() - started) / 1000)} s`,
        );
      }
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`go install failed with exit code ${code}:\n${tail}`)),
    );
  });

/**
 * Finds a Temporal CLI: TEMPORAL_CLI_PATH, `temporal` on PATH, the per-user cache, a `go install`
 * into that cache, and last the SDK's own download (machines with internet). Says which it used.
 */
export const resolveTemporalCli = async (
  env: NodeJS.ProcessEnv = process.env,
  say: Say = (l) => console.log(l),
): Promise<ResolvedTemporalCli> => {
  const explicit = env.TEMPORAL_CLI_PATH;
  if (explicit) {
    if (!isExecutable(explicit)) throw new Error(`TEMPORAL_CLI_PATH=${explicit} is not an executable file`);
    say(`Temporal CLI: ${explicit} (from TEMPORAL_CLI_PATH)`);
    return { path: explicit, source: 'TEMPORAL_CLI_PATH' };
  }
  const fromPath = onPath('temporal', env);
  if (fromPath) {
    say(`Temporal CLI: ${fromPath} (found on PATH)`);
    return { path: fromPath, source: 'PATH' };
  }
  const cacheDir = temporalCacheDir(env);
  const cached = join(cacheDir, 'temporal');
  if (isExecutable(cached)) {
    say(`Temporal CLI: ${cached} (cached build)`);
    return { path: cached, source: 'cache' };
  }
  const go = onPath('go', env);
  if (go) {
    try {
      return { path: await goInstall(cacheDir, go, say), source: 'go install' };
    } catch (err) {
      say(`Temporal CLI: go install failed (${(err as Error).message.split('\n')[0]}); trying the SDK download`);
    }
  }
  say('Temporal CLI: not found locally; the Temporal SDK will download it (needs internet)');
  return { source: 'sdk download' };
};
