import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { auditCheckpointFile } from '../activities/audit-checkpoints';
import { verifyAuditChain } from '../activities/audit-verify';
import { createUser, issueApiKey } from '../activities/users';
import { ROLES, type Role } from '../domain/roles';
import { connect } from '../db/client';
import { runMigrations } from '../db/migrate';
import { ConfigError, loadConfig, type Config } from '../runtime/config';
import { generateKeyFile, loadKeyring, publicKeyPem } from '../runtime/keyring';
import { readRuntimeFile } from '../runtime/runtime-file';
import { provideDatabase } from '../runtime/provision';
import { resolveTemporalCli } from '../runtime/temporal-cli';

const say = (line: string) => console.error(`[custodian] ${line}`);

/** DATABASE_URL, else the database of a running `custodian start`, else the embedded cluster started briefly. */
const withDatabaseUrl = async <T>(run: (url: string) => Promise<T>): Promise<T> => {
  const config = loadConfig();
  const url = config.DATABASE_URL ?? readRuntimeFile(config.dataDir)?.databaseUrl;
  if (url) return run(url);
  const embedded = await provideDatabase(config, say);
  try {
    return await run(embedded.url);
  } finally {
    await embedded.stop();
  }
};

/** As the owning role (CUSTODIAN_MIGRATION_DATABASE_URL, or the embedded owner), then grants to the service role. */
export const migrateCommand = async () => {
  const db = await provideDatabase(loadConfig(), say);
  try {
    await runMigrations(db.migrationUrl, { serviceRole: db.serviceRole });
    say(db.serviceRole ? `migrations applied; privileges granted to '${db.serviceRole}'` : 'migrations applied');
  } finally {
    await db.stop();
  }
};

const flag = (args: string[], name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

/** `create-api-key <user-id>` or `create-api-key --new-user NAME --role ROLE`; prints the key once on stdout. */
export const createApiKeyCommand = (args: string[]) =>
  withDatabaseUrl(async (url) => {
    const database = connect(url, { max: 1 });
    try {
      let userId = args[0] && !args[0].startsWith('--') ? args[0] : undefined;
      const newUser = flag(args, '--new-user');
      if (!userId && newUser) {
        const role = flag(args, '--role') as Role | undefined;
        if (!role || !ROLES.includes(role)) throw new ConfigError(`--role: one of ${ROLES.join(', ')}`);
        userId = (await createUser(database.db, { name: newUser, role }, { actor: 'cli' })).id;
        say(`created user ${userId} (${role})`);
      }
      if (!userId) throw new ConfigError('usage: create-api-key <user-id> | --new-user NAME --role ROLE');
      const { id, key } = await issueApiKey(database.db, userId, { actor: 'cli' });
      say(`API key ${id} issued for user ${userId}; it is shown once:`);
      console.log(key);
    } finally {
      await database.close();
    }
  });

/** The key checkpoints must verify under: a PEM the auditor was given, else the public half of the keyring. */
const checkpointPublicKey = async (config: Config, pemFile: string | undefined) => {
  if (pemFile) return readFile(pemFile, 'utf8');
  const { keyring } = await loadKeyring({ env: config, dataDir: config.dataDir, allowGenerate: false }).catch(
    (err: Error) => {
      throw new ConfigError(`${err.message}; or pass --public-key <file.pem>`);
    },
  );
  return keyring.signing.publicKey;
};

/**
 * `verify-audit [--checkpoints FILE] [--public-key PEM]`: the chain against the signed checkpoints of the
 * database and of a checkpoint file (default: the configured sink, when present). Exit 1 when anything fails.
 */
export const verifyAuditCommand = (args: string[]) =>
  withDatabaseUrl(async (url) => {
    const config = loadConfig();
    const named = flag(args, '--checkpoints');
    if (named !== undefined && !existsSync(named)) throw new ConfigError(`--checkpoints: no such file ${named}`);
    const sink = auditCheckpointFile(config);
    const file = named ?? (existsSync(sink) ? sink : undefined);
    const publicKey = await checkpointPublicKey(config, flag(args, '--public-key'));
    const database = connect(url, { max: 1 });
    try {
      const result = await verifyAuditChain(database.db, { checkpoints: { publicKey, file } });
      console.log(JSON.stringify(result, null, 2));
      return result.valid ? 0 : 1;
    } finally {
      await database.close();
    }
  });

export const temporalCliCommand = async () => {
  const cli = await resolveTemporalCli(process.env, say);
  if (!cli.path) return 1;
  console.log(cli.path);
  return 0;
};

/**
 * Prints the signing public key (SPKI PEM) for auditors: `verify-audit --public-key` and `verify-receipt
 * --public-key` check checkpoints and receipts with it, without the keyring.
 */
export const publicKeyCommand = async () => {
  const config = loadConfig();
  const { keyring } = await loadKeyring({ env: config, dataDir: config.dataDir, allowGenerate: false });
  process.stdout.write(publicKeyPem(keyring));
  return 0;
};

/** Prints a new keyring as JSON on stdout, for a secrets manager; nothing is written to disk. */
export const generateKeyringCommand = async () => {
  console.log(JSON.stringify(generateKeyFile()));
  say('new keyring printed on stdout: store it as CUSTODIAN_KEYRING (or a 0600 CUSTODIAN_KEY_FILE)');
  return 0;
};
