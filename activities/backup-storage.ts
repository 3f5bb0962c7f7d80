import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { backupDir, type Config } from '../runtime/config';

/** An object in backup storage. */
export interface StoredObject {
  key: string;
  bytes: number;
  modifiedAt: Date;
}

/**
 * Where backup files live. A directory today; an object store later implements the same five calls. `put` is
 * atomic: nothing is visible under `key` until every byte is durable, so a killed writer leaves no partial object
 * (only a temporary that `sweep` removes, and that `list` never shows).
 */
export interface BackupStorage {
  /** Streams `body` into `key`, replacing any object there; returns the bytes written. */
  put(key: string, body: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Readable): Promise<{ bytes: number }>;
  /** A stream of the object's bytes; rejects with `BackupObjectMissing` when there is none. */
  get(key: string): Promise<Readable>;
  /** Complete objects whose key starts with `prefix`, by key. */
  list(prefix?: string): Promise<StoredObject[]>;
  /** True when something was deleted. */
  delete(key: string): Promise<boolean>;
  stat(key: string): Promise<StoredObject | undefined>;
  /**
   * Removes temporaries of interrupted puts: those of keys starting with `keyPrefix` (a writer cleaning up after
   * its own earlier attempt), and any older than `olderThanMs`.
   */
  sweep(o: { keyPrefix?: string; olderThanMs?: number }): Promise<number>;
}

export class BackupObjectMissing extends Error {
  override name = 'BackupObjectMissing';
}

const KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;
const TEMP_PREFIX = '.tmp-';

const checkKey = (key: string): string => {
  if (!KEY.test(key)) throw new Error(`invalid backup storage key '${key}'`);
  return key;
};

/** Temporary names: `.tmp-<key>.<random>`; a dot-name, so directory listings of complete objects skip them. */
const tempName = (key: string) => `${TEMP_PREFIX}${key}.${randomBytes(6).toString('hex')}`;
const keyOfTemp = (name: string) => name.slice(TEMP_PREFIX.length).replace(/\.[0-9a-f]{12}$/, '');

const missing = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT';

/** Makes a rename durable: the directory entry is flushed too. */
const syncDirectory = async (dir: string) => {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
};

/** A directory of backup objects (mode 0600 files; the bytes are ciphertext, the manifests signed). */
export const directoryStorage = (dir: string): BackupStorage => {
  // Made on first use, not when the storage is built: every worker builds one, most never write.
  let made: Promise<unknown> | undefined;
  const ready = () =>
    (made ??= mkdir(dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
      made = undefined;
      throw err;
    }));
  const path = (key: string) => join(dir, checkKey(key));

  const statOf = async (key: string): Promise<StoredObject | undefined> => {
    try {
      const info = await stat(path(key));
      return info.isFile() ? { key, bytes: info.size, modifiedAt: info.mtime } : undefined;
    } catch (e) {
      if (missing(e)) return undefined;
      throw e;
    }
  };

  return {
    async put(key, body) {
      await ready();
      const temp = join(dir, tempName(checkKey(key)));
      const handle = await open(temp, 'wx', 0o600);
      let bytes = 0;
      try {
        for await (const chunk of body) {
          const buffer = chunk as Uint8Array;
          let written = 0;
          while (written < buffer.length) {
            const { bytesWritten } = await handle.write(buffer, written, buffer.length - written);
            written += bytesWritten;
          }
          bytes += buffer.length;
        }
        await handle.sync();
        await handle.close();
        await rename(temp, path(key));
        await syncDirectory(dir);
        return { bytes };
      } catch (err) {
        await handle.close().catch(() => {});
        await rm(temp, { force: true });
        throw err;
      }
    },

    async get(key) {
      if (!(await statOf(key))) throw new BackupObjectMissing(`backup object ${key} does not exist`);
      return createReadStream(path(key), { highWaterMark: 1024 * 1024 });
    },

    async list(prefix = '') {
      await ready();
      const names = (await readdir(dir)).filter((n) => !n.startsWith('.') && n.startsWith(prefix) && KEY.test(n));
      const objects = await Promise.all(names.sort().map(statOf));
      return objects.filter((o): o is StoredObject => o !== undefined);
    },

    async delete(key) {
      try {
        await rm(path(key));
        await syncDirectory(dir);
        return true;
      } catch (e) {
        if (missing(e)) return false;
        throw e;
      }
    },

    stat: statOf,

    async sweep({ keyPrefix, olderThanMs }) {
      await ready();
      let removed = 0;
      for (const name of await readdir(dir)) {
        if (!name.startsWith(TEMP_PREFIX)) continue;
        const mine = keyPrefix !== undefined && keyOfTemp(name).startsWith(keyPrefix);
        let stale = false;
        if (!mine && olderThanMs !== undefined) {
          const info = await stat(join(dir, name)).catch(() => undefined);
          stale = info !== undefined && Date.now() - info.mtimeMs > olderThanMs;
        }
        if (!mine && !stale) continue;
        await rm(join(dir, name), { force: true });
        removed += 1;
      }
      return removed;
    },
  };
};

/** The configured backup storage: `BACKUP_DIR`, default `<data dir>/backups`. */
export const backupStorageFor = (config: Config): BackupStorage => directoryStorage(backupDir(config));

/** Storage keys of a backup's two objects. The manifest is written last: a backup exists once its manifest does. */
export const backupObjectKey = (backupId: string) => `${backupId}.backup`;
export const manifestObjectKey = (backupId: string) => `${backupId}.manifest.json`;
