import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { delimiter, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

interface Service {
  image?: string;
  build?: string | { context: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | number | { target: number; published?: string | number })[];
  volumes?: (string | { type?: string; source?: string; target: string })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test: string | string[] };
  deploy?: { replicas?: number | string };
  restart?: string;
}

const composeText = read('docker-compose.yml');
// `merge: true` resolves the `<<: *custodian` keys the way Compose does.
const compose = parse(composeText, { merge: true }) as { services: Record<string, Service> };
const services = compose.services;
const service = (name: string): Service => {
  const s = services[name];
  if (!s) throw new Error(`docker-compose.yml has no service "${name}"`);
  return s;
};
const env = (s: Service): Record<string, string> => {
  const e = s.environment ?? {};
  if (Array.isArray(e)) return Object.fromEntries(e.map((kv) => [kv.split('=')[0]!, kv.slice(kv.indexOf('=') + 1)]));
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, String(v)]));
};
const dependsOn = (s: Service): Record<string, string> => {
  const d = s.depends_on ?? [];
  if (Array.isArray(d)) return Object.fromEntries(d.map((n) => [n, 'service_started']));
  return Object.fromEntries(Object.entries(d).map(([n, v]) => [n, v.condition ?? 'service_started']));
};
const command = (s: Service): string[] =>
  Array.isArray(s.command) ? s.command : (s.command ?? '').split(/\s+/).filter(Boolean);
/** The container port of a `ports` entry (`"host:container"`, `"ip:host:container/tcp"`, long form). */
const containerPort = (p: string | number | { target: number }): number =>
  typeof p === 'object' ? p.target : Number(String(p).split('/')[0]!.split(':').at(-1));

/** A required interpolation: `${NAME:?message}` or `${NAME?message}` — Compose refuses to run without it. */
const REQUIRED_VAR = /^\$\{[A-Z_][A-Z0-9_]*:?\?[^}]*\}$/;
const SECRET_NAME = /KEYRING|KEY_FILE|SECRET|PASSWORD|PWD|TOKEN|(^|_)KEY($|_)/;

const APP_SERVICES = ['migrate', 'api', 'worker'];
const SOURCE_FOLDERS = ['activities', 'api', 'bin', 'cli', 'db', 'domain', 'runtime', 'workflows'];

describe('docker-compose.yml', () => {
  it('declares the production topology', () => {
    expect(Object.keys(services).sort()).toEqual(
      expect.arrayContaining(['api', 'migrate', 'postgres', 'temporal', 'temporal-ui', 'worker']),
    );
    expect(env(service('temporal'))).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgres' });
    expect(env(service('temporal')).POSTGRES_USER).not.toBe('postgres');
    expect(env(service('temporal-ui')).TEMPORAL_ADDRESS).toBe('temporal:7233');
  });

  it('runs api, worker and migrate from the image built here, each with its own command', () => {
    const image = service('migrate').image;
    expect(image).toBeTruthy();
    for (const [name, cmd] of [
      ['migrate', 'migrate'],
      ['api', 'api'],
      ['worker', 'worker'],
    ] as const) {
      const s = service(name);
      expect(s.image, name).toBe(image);
      const context = typeof s.build === 'string' ? s.build : s.build?.context;
      expect(context, `${name} builds from the repository root`).toMatch(/^\.\/?$/);
      expect(command(s), name).toEqual([cmd]);
      expect(env(s), name).toMatchObject({ TEMPORAL_ADDRESS: 'temporal:7233' });
      expect(new URL(env(s).DATABASE_URL!.replace(/\$\{[^}]*\}/g, 'x')).host, name).toBe('postgres:5432');
    }
    expect(env(service('api')).HOST).toBe('0.0.0.0');
    expect(service('migrate').restart, 'a one-shot job must not be restarted after it exits 0').toBe('no');
  });

  it('pins every pulled image to a concrete tag', () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.build) continue;
      expect(s.image, name).toMatch(/^[\w./-]+:\d[\w.-]*$/);
    }
  });

  it('takes the keyring from the environment, required, on every app service', () => {
    for (const name of APP_SERVICES) {
      const e = env(service(name));
      expect(e.CUSTODIAN_KEYRING, name).toMatch(REQUIRED_VAR);
      expect(e.CUSTODIAN_KEYRING, name).toMatch(/^\$\{CUSTODIAN_KEYRING:\?/);
      expect(e.CUSTODIAN_KEY_FILE, name).toBeUndefined();
    }
  });

  it('hard-codes no secret: keys and passwords are all required variables', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [key, value] of Object.entries(env(s))) {
        if (SECRET_NAME.test(key)) expect(value, `${name}.${key}`).toMatch(REQUIRED_VAR);
        if (/^[a-z][a-z0-9+.-]*:\/\/[^/]*@/i.test(value)) {
          const password = value.match(/^[^:]+:\/\/[^:@/]*:([^@]*)@/)?.[1];
          expect(password, `${name}.${key} password`).toMatch(REQUIRED_VAR);
        }
      }
    }
    // Nothing that looks like key material anywhere in the file: long base64 or hex runs.
    expect(composeText).not.toMatch(/[A-Za-z0-9+/]{40,}={0,2}/);
    expect(composeText).not.toMatch(/\b[0-9a-f]{32,}\b/i);
  });

  it('starts api and worker only after migrate has completed and alongside temporal', () => {
    for (const name of ['api', 'worker']) {
      const deps = dependsOn(service(name));
      expect(deps.migrate, name).toBe('service_completed_successfully');
      expect(deps.temporal, name).toMatch(/^service_(started|healthy)$/);
      expect(service(name).deploy?.replicas, `${name} is scalable through deploy.replicas`).toBeDefined();
    }
    expect(dependsOn(service('migrate')).postgres).toBe('service_healthy');
    expect(dependsOn(service('temporal')).postgres).toBe('service_healthy');
  });

  it('health-checks postgres and never publishes it on the host', () => {
    const test = service('postgres').healthcheck?.test;
    expect([test].flat().join(' ')).toContain('pg_isready');
    expect(service('postgres').ports ?? []).toEqual([]);
    for (const [name, s] of Object.entries(services)) {
      for (const p of s.ports ?? []) expect(containerPort(p), `${name} publishes ${JSON.stringify(p)}`).not.toBe(5432);
    }
  });

  it('creates the database DATABASE_URL names, from passwords in the environment', () => {
    const database = new URL(env(service('migrate')).DATABASE_URL!.replace(/\$\{[^}]*\}/g, 'x')).pathname.slice(1);
    const mounts = (service('postgres').volumes ?? []).map((v) =>
      typeof v === 'string' ? v : `${v.source}:${v.target}`,
    );
    const init = mounts.find((m) => m.includes('/docker-entrypoint-initdb.d/'));
    expect(init, 'postgres mounts an init script').toBeDefined();
    const source = init!.split(':')[0]!;
    expect(existsSync(join(root, source)), source).toBe(true);
    const script = read(source);
    expect(script).toMatch(new RegExp(`CREATE DATABASE ${database}\\b`, 'i'));
    expect(script).toMatch(/CREATE ROLE temporal\b.*CREATEDB/i);
    expect(script).not.toMatch(/PASSWORD\s+'/i); // passwords are psql variables, fed from the environment
    expect(statSync(join(root, source)).mode & 0o111, 'init script is executable').not.toBe(0);
  });
});

const userOf = (url: string) => new URL(url.replace(/\$\{[^}]*\}/g, 'x')).username;
const initScriptPath = () => {
  const mounts = (service('postgres').volumes ?? []).map((v) =>
    typeof v === 'string' ? v : `${v.source}:${v.target}`,
  );
  return mounts.find((m) => m.includes('/docker-entrypoint-initdb.d/'))!.split(':')[0]!;
};

describe('docker-compose.yml database roles', () => {
  const migrate = env(service('migrate'));
  const owner = userOf(migrate.CUSTODIAN_MIGRATION_DATABASE_URL ?? 'postgres://missing@x/x');
  const serviceRole = userOf(migrate.DATABASE_URL!);

  it('migrates as the owning role and runs api and worker as another, which only migrate can tell', () => {
    expect(migrate.CUSTODIAN_MIGRATION_DATABASE_URL, 'migrate has an owner connection').toBeDefined();
    expect(serviceRole).not.toBe(owner);
    expect(new URL(migrate.CUSTODIAN_MIGRATION_DATABASE_URL!.replace(/\$\{[^}]*\}/g, 'x')).host).toBe('postgres:5432');
    for (const name of ['api', 'worker']) {
      const e = env(service(name));
      expect(userOf(e.DATABASE_URL!), name).toBe(serviceRole);
      expect(e.CUSTODIAN_MIGRATION_DATABASE_URL, `${name} never sees the owner's password`).toBeUndefined();
    }
  });

  it('creates the database owned by the owner, and the service role without any power', () => {
    const script = read(initScriptPath());
    const database = new URL(migrate.DATABASE_URL!.replace(/\$\{[^}]*\}/g, 'x')).pathname.slice(1);
    expect(script).toMatch(new RegExp(`CREATE DATABASE ${database} OWNER ${owner}\\b`, 'i'));
    expect(script).toMatch(
      new RegExp(
        `ALTER ROLE ${serviceRole} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS`,
        'i',
      ),
    );
    expect(script).toMatch(new RegExp(`ALTER ROLE ${owner} WITH LOGIN NOSUPERUSER`, 'i'));
    expect(script).not.toMatch(new RegExp(`OWNER ${serviceRole}\\b`, 'i'));
  });

  // Runs the script on the test server under role and database names of its own (roles are cluster-wide).
  it.runIf(onPath('psql') && process.env.TEST_DATABASE_URL)(
    'init.sh runs on a fresh server and again on the same one',
    () => {
      const suffix = `_${process.pid}_${Date.now().toString(36)}`;
      const names = {
        custodian_app: `ct_app${suffix}`,
        custodian: `ct_owner${suffix}`,
        temporal: `ct_temporal${suffix}`,
      };
      const script = read(initScriptPath())
        .replace(/\bcustodian_app\b/g, names.custodian_app)
        .replace(/\bcustodian\b/g, names.custodian)
        .replace(/\btemporal\b/g, names.temporal);
      const server = new URL(process.env.TEST_DATABASE_URL!);
      const shellEnv = {
        ...process.env,
        PGHOST: server.hostname,
        PGPORT: server.port || '5432',
        PGPASSWORD: decodeURIComponent(server.password),
        POSTGRES_USER: decodeURIComponent(server.username),
        CUSTODIAN_DB_PASSWORD: 'owner-pw',
        CUSTODIAN_APP_DB_PASSWORD: 'app-pw',
        TEMPORAL_DB_PASSWORD: 'temporal-pw',
      };
      const psql = (sql: string) =>
        spawnSync('psql', ['-tAX', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres', '-c', sql], {
          env: shellEnv,
          encoding: 'utf8',
        });
      try {
        for (let run = 0; run < 2; run++) {
          const result = spawnSync('sh', ['-s'], { input: script, env: shellEnv, encoding: 'utf8', timeout: 30_000 });
          expect(result.status, `run ${run + 1}: ${result.stderr}`).toBe(0);
        }
        const roles = psql(
          `select rolname || ':' || rolsuper || rolcreatedb || rolcreaterole from pg_roles where rolname like 'ct_%${suffix}' order by 1`,
        );
        expect(roles.stdout.trim().split('\n')).toEqual([
          `${names.custodian_app}:falsefalsefalse`,
          `${names.custodian}:falsefalsefalse`,
          `${names.temporal}:falsetruefalse`,
        ]);
        const ownerOf = psql(`select pg_get_userbyid(datdba) from pg_database where datname = '${names.custodian}'`);
        expect(ownerOf.stdout.trim()).toBe(names.custodian);
      } finally {
        psql(`drop database if exists ${names.custodian}`);
        for (const role of Object.values(names)) psql(`drop role if exists ${role}`);
      }
    },
  );
});

describe('Dockerfile', () => {
  const instructions = read('Dockerfile')
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
  const copied = new Set(
    instructions
      .filter((i) => i.op === 'COPY')
      .flatMap((i) => {
        const parts = i.args.split(/\s+/).filter((a) => !a.startsWith('--'));
        return parts.slice(0, -1).map((p) => p.replace(/^\.\//, '').replace(/\/$/, ''));
      }),
  );
  const ignored = read('.dockerignore')
    .split(/\r?\n/)
    .map((l) => l.trim().replace(/^\//, '').replace(/\/$/, ''))
    .filter((l) => l && !l.startsWith('#'));

  it('copies every source folder the CLI needs, and the manifests', () => {
    for (const folder of [...SOURCE_FOLDERS, 'package.json', 'package-lock.json', 'tsconfig.json']) {
      expect(copied.has(folder), `Dockerfile copies ${folder}`).toBe(true);
      expect(ignored, `.dockerignore keeps ${folder} in the context`).not.toContain(folder);
    }
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', '.data', '.git', '.env']));
  });

  it.runIf(existsSync(join(root, 'cli/main.ts')))('copies every top-level folder cli/main.ts reaches', () => {
    const seen = new Set<string>();
    const folders = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const source = readFileSync(file, 'utf8');
      // Static and dynamic imports, and paths built with `new URL('../x', import.meta.url)` (workflow bundles, migrations).
      for (const m of source.matchAll(/(?:from|import\s*\(?|new URL\()\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
        const path = resolve(dirname(file), m[1]!);
        const inRepo = relative(root, path).split(sep);
        if (inRepo.length > 1 && inRepo[0] !== '..') folders.add(inRepo[0]!);
        const target = resolveModule(path);
        if (target) visit(target);
      }
    };
    visit(join(root, 'cli/main.ts'));
    for (const folder of folders) expect(copied.has(folder), `Dockerfile copies ${folder}`).toBe(true);
  });

  it('runs as an unprivileged user through tsx, api by default', () => {
    const users = instructions.filter((i) => i.op === 'USER').map((i) => i.args.split(':')[0]);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0']).not.toContain(users.at(-1));
    const from = instructions.find((i) => i.op === 'FROM')?.args;
    expect(from).toMatch(/^node:20[\w.-]*-bookworm-slim\b/);
    expect(instructions.find((i) => i.op === 'ENTRYPOINT')?.args).toMatch(
      /^\[\s*"node",\s*"--import",\s*"tsx",\s*"cli\/main\.ts"\s*\]$/,
    );
    expect(instructions.filter((i) => i.op === 'CMD').at(-1)?.args).toMatch(/^\[\s*"api"\s*\]$/);
    expect(instructions.some((i) => i.op === 'RUN' && /npm ci\b.*--omit=dev/.test(i.args))).toBe(true);
  });
});

const resolveModule = (base: string): string | undefined => {
  const candidates = [base, `${base}.ts`, base.replace(/\.js$/, '.ts'), join(base, 'index.ts')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile() && /\.[cm]?[jt]s$/.test(c));
};

const onPath = (bin: string): boolean =>
  (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, bin), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });

describe.runIf(onPath('docker-compose'))('docker-compose config', () => {
  const required = {
    CUSTODIAN_KEYRING: JSON.stringify({ note: 'dummy keyring for a config check' }),
    POSTGRES_PASSWORD: 'dummy-postgres',
    CUSTODIAN_DB_PASSWORD: 'dummy-custodian',
    CUSTODIAN_APP_DB_PASSWORD: 'dummy-custodian-app',
    TEMPORAL_DB_PASSWORD: 'dummy-temporal',
  };
  const run = (extra: Record<string, string>) => {
    const base = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !(k in required) && !k.startsWith('COMPOSE_')),
    );
    return spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], {
      cwd: root,
      env: { ...base, ...extra },
      encoding: 'utf8',
      timeout: 30_000,
    });
  };

  it('validates with the required variables set', () => {
    const result = run(required);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr, 'no warnings either').toBe('');
  });

  it('refuses to run without the keyring', () => {
    const { CUSTODIAN_KEYRING: _omitted, ...rest } = required;
    const result = run(rest);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('CUSTODIAN_KEYRING');
  });
});
