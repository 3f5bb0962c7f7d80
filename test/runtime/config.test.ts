import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ConfigError, ENV_VARIABLES, loadConfig } from '../../runtime/config';

/** Variables whose any non-blank value is acceptable (paths, names, free text). */
const FREE_FORM = new Set([
  'CUSTODIAN_DATA_DIR',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_TASK_QUEUE',
  'HOST',
  'CUSTODIAN_CATALOG_FILE',
  'CUSTODIAN_KEYRING',
  'CUSTODIAN_KEY_FILE',
  'CUSTODIAN_AUDIT_CHECKPOINT_FILE',
  'BACKUP_DIR',
]);

const errorFor = (env: Record<string, string>) => {
  try {
    loadConfig(env);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
};

describe('configuration', () => {
  it('names the variable in a one-line error for every invalid value', () => {
    const accepted: string[] = [];
    for (const name of ENV_VARIABLES) {
      const message = errorFor({ [name]: 'not valid: -1 ~' });
      if (message === undefined) accepted.push(name);
      else {
        expect(message.startsWith(`${name}: `), message).toBe(true);
        expect(message).not.toContain('\n');
      }
    }
    expect(accepted.sort()).toEqual([...FREE_FORM].filter((n) => ENV_VARIABLES.includes(n as never)).sort());
  });

  it('refuses an import thread count it would once have ignored, and keeps secrets out of the message', () => {
    expect(errorFor({ CUSTODIAN_IMPORT_THREADS: '-1' })).toMatch(/^CUSTODIAN_IMPORT_THREADS: .*'-1'/);
    expect(errorFor({ CUSTODIAN_IMPORT_THREADS: 'four' })).toMatch(/^CUSTODIAN_IMPORT_THREADS: /);
    expect(loadConfig({ CUSTODIAN_IMPORT_THREADS: '3' }).CUSTODIAN_IMPORT_THREADS).toBe(3);
    expect(loadConfig({ CUSTODIAN_IMPORT_THREADS: '' }).CUSTODIAN_IMPORT_THREADS).toBeUndefined();
    const secretUrl = 'mysql://user:s3cret@db/x';
    expect(errorFor({ DATABASE_URL: secretUrl })).not.toContain('s3cret');
  });

  it('reads configuration from runtime/config.ts alone', () => {
    // Every process.env read outside config.ts is either a subprocess environment or the CLI's debug switch.
    const reads = execFileSync(
      'git',
      [
        'grep',
        '-n',
        'process\\.env\\.[A-Z_]*',
        '--',
        'activities',
        'api',
        'runtime',
        'cli',
        'db',
        'domain',
        'workflows',
      ],
      {
        encoding: 'utf8',
      },
    )
      .split('\n')
      .filter(Boolean)
      .filter((line) => !line.startsWith('runtime/config.ts'));
    const allowed = [/process\.env\.GOFLAGS/, /process\.env\.LOG_LEVEL === 'debug'/];
    expect(reads.filter((line) => !allowed.some((a) => a.test(line)))).toEqual([]);
  });
});
