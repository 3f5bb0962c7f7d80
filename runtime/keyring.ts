import { createHash, createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { inspect } from 'node:util';
import { z } from 'zod';

export interface Keyring {
  /** Key-encryption keys by version, 32 bytes each; old versions stay to unwrap older data keys. */
  keks: ReadonlyMap<number, Buffer>;
  currentKekVersion: number;
  /** HMAC-SHA256 key for blind indexes. */
  blindIndexKey: Buffer;
  /** Ed25519; keyId is the first 16 hex characters of SHA-256 over the raw public key. */
  signing: { privateKey: KeyObject; publicKey: KeyObject; keyId: string };
  /** AES-256-GCM key that encrypts Temporal payloads. */
  codec: { keyId: string; key: Buffer };
  /** Earlier codec keys by keyId, kept to decode histories written before a codec-key rotation. */
  retiredCodecKeys?: ReadonlyMap<string, Buffer>;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const secret = (bytes: number) =>
  z
    .string({ error: `must be a base64 string of ${bytes} bytes` })
    .refine((s) => BASE64.test(s) && Buffer.from(s, 'base64').length === bytes, {
      error: `must be ${bytes} bytes, base64-encoded`,
    });
const KeyId = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, { error: 'must be 1-64 characters of [A-Za-z0-9._-]' });

/** The key file (or CUSTODIAN_KEYRING) as JSON: every secret base64-encoded. */
export const KeyFile = z
  .object({
    version: z.literal(1),
    currentKekVersion: z.number().int().positive(),
    keks: z.record(z.string().regex(/^[1-9][0-9]*$/, { error: 'KEK versions are positive integers' }), secret(32)),
    blindIndexKey: secret(32),
    /** The 32-byte Ed25519 private key (seed). */
    signingKey: secret(32),
    codec: z.object({ keyId: KeyId, key: secret(32) }).strict(),
    retiredCodecKeys: z.record(KeyId, secret(32)).optional(),
  })
  .strict()
  .refine((f) => String(f.currentKekVersion) in f.keks, {
    error: 'no such KEK version in keks',
    path: ['currentKekVersion'],
  });
export type KeyFile = z.infer<typeof KeyFile>;

export const generateKeyFile = (): KeyFile => {
  const key = () => randomBytes(32).toString('base64');
  return {
    version: 1,
    currentKekVersion: 1,
    keks: { '1': key() },
    blindIndexKey: key(),
    signingKey: key(),
    codec: { keyId: `codec-${randomBytes(4).toString('hex')}`, key: key() },
  };
};

// DER prefix of a PKCS#8 Ed25519 private key (RFC 8410); the 32-byte seed follows it.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

const signingKeys = (seed: Buffer): Keyring['signing'] => {
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = createPublicKey(privateKey);
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  return { privateKey, publicKey, keyId: createHash('sha256').update(raw).digest('hex').slice(0, 16) };
};

/** Keeps key bytes out of console.log, util.inspect and JSON loggers if a keyring is ever logged. */
const redacted = (keyring: Keyring): Keyring => {
  const summary = `[Keyring kek v${keyring.currentKekVersion}, signing ${keyring.signing.keyId}, codec ${keyring.codec.keyId}]`;
  Object.defineProperty(keyring, 'toJSON', { value: () => summary });
  Object.defineProperty(keyring, inspect.custom, { value: () => summary });
  return keyring;
};

/** Validates a key file; errors name the field and the source, never a value. */
export const parseKeyring = (json: unknown, source: string): Keyring => {
  const parsed = KeyFile.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
    throw new Error(`invalid keyring from ${source}: ${problems.join('; ')}`);
  }
  const file = parsed.data;
  const b = (s: string) => Buffer.from(s, 'base64');
  return redacted({
    keks: new Map(Object.entries(file.keks).map(([version, key]) => [Number(version), b(key)])),
    currentKekVersion: file.currentKekVersion,
    blindIndexKey: b(file.blindIndexKey),
    signing: signingKeys(b(file.signingKey)),
    codec: { keyId: file.codec.keyId, key: b(file.codec.key) },
    retiredCodecKeys: new Map(Object.entries(file.retiredCodecKeys ?? {}).map(([id, key]) => [id, b(key)])),
  });
};

/** PEM (SPKI) of the signing public key, for verifiers of certificates and receipts. */
export const publicKeyPem = (keyring: Keyring): string =>
  keyring.signing.publicKey.export({ type: 'spki', format: 'pem' }).toString();

const parseJson = (text: string, source: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    // JSON.parse messages quote the input, which here is key material.
    throw new Error(`invalid keyring from ${source}: not valid JSON`);
  }
};

const readKeyFile = async (path: string): Promise<Keyring> => {
  const info = await stat(path);
  if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    throw new Error(
      `key file ${path} is accessible to group or others (mode ${mode}); restrict it with \`chmod 600 ${path}\``,
    );
  }
  return parseKeyring(parseJson(await readFile(path, 'utf8'), path), path);
};

const exists = (path: string) =>
  stat(path).then(
    () => true,
    (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? false : Promise.reject(e)),
  );

/** Writes to a private temp file, then links it into place, so no half-written or clobbered key file is seen. */
const writeNewKeyFile = async (path: string, file: KeyFile): Promise<'created' | 'exists'> => {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(file, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    // link (unlike rename) fails if another process generated a keyring first; theirs wins.
    await link(temp, path);
    return 'created';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return 'exists';
    throw e;
  } finally {
    await unlink(temp).catch(() => {});
  }
};

const generatedWarning = (path: string): string[] => {
  const bar = '!'.repeat(100);
  return [
    bar,
    '!! WARNING: NO KEYS WERE SUPPLIED, SO CUSTODIAN GENERATED A NEW KEYRING:',
    `!!   ${path}`,
    '!! These keys encrypt every personal-data value and sign receipts and certificates.',
    '!! This is only fit for a local trial. PRODUCTION MUST SUPPLY ITS OWN KEYS through',
    '!! CUSTODIAN_KEYRING or CUSTODIAN_KEY_FILE, held in a secrets manager and backed up',
    '!! separately from the data backups. Losing this file makes all encrypted data unrecoverable.',
    bar,
  ];
};

export interface LoadKeyringOptions {
  /** The parsed configuration (runtime/config.ts), or the same two variables in a test. */
  env: { CUSTODIAN_KEYRING?: string; CUSTODIAN_KEY_FILE?: string };
  dataDir: string;
  allowGenerate: boolean;
  say?: (line: string) => void;
}

/** Keys from CUSTODIAN_KEYRING, else CUSTODIAN_KEY_FILE, else <dataDir>/keyring.json, else (if allowed) a new one. */
export const loadKeyring = async ({
  env,
  dataDir,
  allowGenerate,
  say = () => {},
}: LoadKeyringOptions): Promise<{ keyring: Keyring; generated: boolean; source: string }> => {
  const inline = env.CUSTODIAN_KEYRING;
  if (inline) {
    const source = 'CUSTODIAN_KEYRING';
    return { keyring: parseKeyring(parseJson(inline, source), source), generated: false, source };
  }
  if (env.CUSTODIAN_KEY_FILE) {
    const source = resolve(env.CUSTODIAN_KEY_FILE);
    if (!(await exists(source))) throw new Error(`CUSTODIAN_KEY_FILE names ${source}, which does not exist`);
    return { keyring: await readKeyFile(source), generated: false, source };
  }
  const source = resolve(join(dataDir, 'keyring.json'));
  if (await exists(source)) return { keyring: await readKeyFile(source), generated: false, source };
  if (!allowGenerate) {
    throw new Error(`no keyring: set CUSTODIAN_KEYRING or CUSTODIAN_KEY_FILE (looked for ${source} too)`);
  }
  // Default mode on purpose: the file itself is 0600, and as root the embedded Postgres user must traverse dataDir.
  await mkdir(dataDir, { recursive: true });
  if ((await writeNewKeyFile(source, generateKeyFile())) === 'exists') {
    return { keyring: await readKeyFile(source), generated: false, source };
  }
  generatedWarning(source).forEach((line) => say(line));
  return { keyring: await readKeyFile(source), generated: true, source };
};

// The configured current KEK of each keyring that adopted rotation-made versions: it wraps those versions.
const configuredCurrent = new WeakMap<Keyring, number>();

/** The KEK that wraps the KEK versions key rotation makes: the configured current version (key file or env). */
export const rootKekVersion = (keyring: Keyring): number => configuredCurrent.get(keyring) ?? keyring.currentKekVersion;

/**
 * Adds KEK versions made by key rotation (activities/key-rotation-keks.ts reads them from `kek_versions`) to the
 * keyring in place and makes `current` the version new data keys are wrapped under, so everything that shares this
 * keyring object sees the rotation. The configured keys stay: they unwrap older keys and wrap the made versions.
 */
export const adoptKekVersions = (keyring: Keyring, versions: ReadonlyMap<number, Buffer>, current: number): void => {
  if (!configuredCurrent.has(keyring)) configuredCurrent.set(keyring, keyring.currentKekVersion);
  const keks = keyring.keks as Map<number, Buffer>;
  for (const [version, key] of versions) if (!keks.has(version)) keks.set(version, key);
  if (!keks.has(current)) throw new Error(`KEK version ${current} is not in the keyring`);
  keyring.currentKekVersion = current;
};
