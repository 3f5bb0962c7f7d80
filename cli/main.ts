import { ConfigError } from '../runtime/config';
import { backupCommand } from './backup';
import { importCommand } from './import';
import { verifyReceiptCommand } from './receipts';
import { restoreCommand } from './restore';
import { apiCommand, startCommand, workerCommand } from './start';
import {
  createApiKeyCommand,
  generateKeyringCommand,
  publicKeyCommand,
  migrateCommand,
  temporalCliCommand,
  verifyAuditCommand,
} from './admin';

const usage = `custodian <command>

  start                 API + worker + Temporal dev server + PostgreSQL in one process (embedded defaults)
  api                   the HTTP API only (needs DATABASE_URL and TEMPORAL_ADDRESS)
  worker                the Temporal worker only (needs DATABASE_URL and TEMPORAL_ADDRESS)
  migrate               apply database migrations
  create-api-key <user-id|--new-user NAME --role ROLE>   issue an API key (shown once)
  import <file.ndjson> [--mode insert|upsert]   import subjects, with progress and a summary
  backup [--no-restore-test]
                        back up now through the backup workflow (progress on stderr); exit 1 when the restore test fails
  restore --backup <id> --target-url <postgres url> [--keyring-backup <id> | --without-keyring]
                        restore a backup into an EMPTY database, verified against its signed manifest
  verify-audit [--checkpoints FILE] [--public-key PEM]
                        recompute the audit hash chain against its signed checkpoints; exit 1 when broken
  verify-receipt <file> [--public-key PEM]
                        check a signed consent receipt offline; exit 1 when invalid
  temporal-cli          find or build the Temporal CLI and print its path (progress on stderr)
  generate-keyring      print a new keyring (KEKs, HMAC, signing and codec keys) as JSON
  public-key            print the signing public key (PEM) auditors verify checkpoints and receipts with
`;

const commands: Record<string, (args: string[]) => Promise<number | void>> = {
  start: startCommand,
  api: apiCommand,
  worker: workerCommand,
  migrate: migrateCommand,
  'create-api-key': createApiKeyCommand,
  import: importCommand,
  backup: backupCommand,
  restore: restoreCommand,
  'verify-audit': verifyAuditCommand,
  'verify-receipt': verifyReceiptCommand,
  'temporal-cli': temporalCliCommand,
  'generate-keyring': generateKeyringCommand,
  'public-key': publicKeyCommand,
};

const [name = 'help', ...args] = process.argv.slice(2);
const command = commands[name];
if (!command) {
  process.stdout.write(usage);
  process.exit(name === 'help' || name === '--help' ? 0 : 2);
}
try {
  const code = await command(args);
  if (typeof code === 'number') process.exitCode = code;
} catch (err) {
  // Expected operator errors are one line; anything else keeps its stack for a bug report.
  const message = err instanceof ConfigError || err instanceof Error ? err.message : String(err);
  console.error(`custodian ${name}: ${message}`);
  if (!(err instanceof ConfigError) && process.env.LOG_LEVEL === 'debug') console.error(err);
  process.exit(1);
}
