import { chmod, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateKeyFile, loadKeyring, parseKeyring, type Keyring } from '../../runtime/keyring';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custodian-keyring-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const sameKeys = (a: Keyring, b: Keyring) => {
  expect(a.blindIndexKey.equals(b.blindIndexKey)).toBe(true);
  expect(a.keks.get(1)?.equals(b.keks.get(1)!)).toBe(true);
  expect(a.signing.keyId).toBe(b.signing.keyId);
  expect(a.codec.keyId).toBe(b.codec.keyId);
};

const secretsOf = (file: ReturnType<typeof generateKeyFile>) => [
  ...Object.values(file.keks),
  file.blindIndexKey,
  file.signingKey,
  file.codec.key,
];

describe('loadKeyring', () => {
  it('generates a private keyring on first start, with a loud warning, and reads it back after', async () => {
    const lines: string[] = [];
    const first = await loadKeyring({
      env: {},
      dataDir: join(dir, 'data'),
      allowGenerate: true,
      say: (l) => lines.push(l),
    });
    expect(first.generated).toBe(true);
    expect(first.source).toBe(join(dir, 'data', 'keyring.json'));
    expect((await stat(first.source)).mode & 0o777).toBe(0o600);
    expect(lines.length).toBeGreaterThan(3);
    expect(lines.join('\n')).toMatch(/PRODUCTION MUST SUPPLY/);
    expect(lines.join('\n')).toContain('CUSTODIAN_KEY_FILE');
    const written = JSON.parse(await readFile(first.source, 'utf8'));
    for (const value of secretsOf(written)) expect(lines.join('\n')).not.toContain(value);
    expect(await readdir(join(dir, 'data'))).toEqual(['keyring.json']);

    const second = await loadKeyring({ env: {}, dataDir: join(dir, 'data'), allowGenerate: true });
    expect(second.generated).toBe(false);
    sameKeys(first.keyring, second.keyring);
  });

  it('refuses a key file that group or others can read, naming the file and chmod 600', async () => {
    const path = join(dir, 'keys.json');
    await writeFile(path, JSON.stringify(generateKeyFile()));
    await chmod(path, 0o644);
    await expect(loadKeyring({ env: { CUSTODIAN_KEY_FILE: path }, dataDir: dir, allowGenerate: true })).rejects.toThrow(
      `chmod 600 ${path}`,
    );
    await chmod(path, 0o600);
    const loaded = await loadKeyring({ env: { CUSTODIAN_KEY_FILE: path }, dataDir: dir, allowGenerate: true });
    expect(loaded).toMatchObject({ generated: false, source: path });
  });

  it('prefers CUSTODIAN_KEYRING over CUSTODIAN_KEY_FILE and the data directory', async () => {
    const inline = generateKeyFile();
    const path = join(dir, 'keys.json');
    await writeFile(path, JSON.stringify(generateKeyFile()), { mode: 0o600 });
    await loadKeyring({ env: {}, dataDir: dir, allowGenerate: true });
    const loaded = await loadKeyring({
      env: { CUSTODIAN_KEYRING: JSON.stringify(inline), CUSTODIAN_KEY_FILE: path },
      dataDir: dir,
      allowGenerate: true,
    });
    expect(loaded.source).toBe('CUSTODIAN_KEYRING');
    sameKeys(loaded.keyring, parseKeyring(inline, 'expected'));
    const fromFile = await loadKeyring({ env: { CUSTODIAN_KEY_FILE: path }, dataDir: dir, allowGenerate: true });
    expect(fromFile.source).toBe(path);
  });

  it('does not generate unless allowed', async () => {
    await expect(loadKeyring({ env: {}, dataDir: dir, allowGenerate: false })).rejects.toThrow(/CUSTODIAN_KEYRING/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('leaves nothing behind when generation fails', async () => {
    // A dangling keyring.json makes the final step fail after the temp file was written.
    await symlink(join(dir, 'nowhere'), join(dir, 'keyring.json'));
    await expect(loadKeyring({ env: {}, dataDir: dir, allowGenerate: true })).rejects.toThrow();
    expect(await readdir(dir)).toEqual(['keyring.json']);
    await expect(stat(join(dir, 'keyring.json'))).rejects.toThrow(/ENOENT/);

    const blocked = join(dir, 'not-a-directory');
    await writeFile(blocked, '');
    await expect(loadKeyring({ env: {}, dataDir: join(blocked, 'data'), allowGenerate: true })).rejects.toThrow();
    expect((await readdir(dir)).sort()).toEqual(['keyring.json', 'not-a-directory']);
  });
});

describe('parseKeyring', () => {
  it('refuses a wrong key length, naming the field and the source but not the value', () => {
    const file = generateKeyFile();
    const short = Buffer.alloc(16, 7).toString('base64');
    const error = (() => {
      try {
        parseKeyring({ ...file, blindIndexKey: short, keks: { '1': file.keks['1'], '2': 'not base64!' } }, 'vault:x');
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error?.message).toMatch(/blindIndexKey: must be 32 bytes/);
    expect(error?.message).toMatch(/keks\.2: must be 32 bytes/);
    expect(error?.message).toContain('vault:x');
    expect(error?.message).not.toContain(short);
    expect(error?.message).not.toContain('not base64!');
  });

  it('refuses a current KEK version that has no key, and invalid JSON without quoting it', async () => {
    expect(() => parseKeyring({ ...generateKeyFile(), currentKekVersion: 2 }, 'f')).toThrow(/currentKekVersion/);
    const env = { CUSTODIAN_KEYRING: '{"blindIndexKey": "c2VjcmV0' };
    const failure = loadKeyring({ env, dataDir: dir, allowGenerate: false });
    await expect(failure).rejects.toThrow('CUSTODIAN_KEYRING: not valid JSON');
    await expect(failure).rejects.not.toThrow(/c2VjcmV0/);
  });

  it('keeps key bytes out of logs', () => {
    const file = generateKeyFile();
    const keyring = parseKeyring(file, 'f');
    const logged = `${inspect(keyring)} ${JSON.stringify({ keyring })}`;
    for (const value of secretsOf(file)) {
      expect(logged).not.toContain(value);
      expect(logged).not.toContain(Buffer.from(value, 'base64').toString('hex').slice(0, 16));
    }
    expect(logged).toContain(keyring.signing.keyId);
  });
});
