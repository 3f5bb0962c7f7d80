import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stageImportFile, StagedFileReader, StagingError } from '../../activities/import-staging';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'custodian-staging-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const chunks = (...parts: (string | Buffer)[]) =>
  Readable.from(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));

describe('staging an upload', () => {
  it('streams the body to a 0600 file and counts non-blank lines across chunk boundaries', async () => {
    const staged = await stageImportFile(dir, 'a', chunks('\uFEFF{"a":1}\n\n  \n{"b"', ':2}\r\n{"c":3}'), {
      maxBytes: 1000,
    });
    expect(staged).toMatchObject({ lines: 3, bytes: 31 });
    expect(await readdir(dir)).toEqual(['a.ndjson']);
    expect((await stat(staged.path)).mode & 0o777).toBe(0o600);
  });

  it('refuses a body that is not NDJSON at its first bytes, without reading the rest', async () => {
    let pulled = 0;
    async function* body() {
      for (;;) {
        pulled += 1;
        yield Buffer.from('id,name\n1,x\n');
      }
    }
    await expect(stageImportFile(dir, 'b', body(), { maxBytes: 1e9 })).rejects.toMatchObject({ code: 'not-ndjson' });
    expect(pulled).toBe(1);
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses an empty body and one over the limit, leaving nothing behind', async () => {
    await expect(stageImportFile(dir, 'c', chunks('\n \n'), { maxBytes: 100 })).rejects.toBeInstanceOf(StagingError);
    await expect(stageImportFile(dir, 'd', chunks('{"a":1}\n'.repeat(20)), { maxBytes: 100 })).rejects.toMatchObject({
      code: 'too-large',
    });
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('reading a staged file in batches', () => {
  const file = async (text: string | Buffer) => {
    const path = join(dir, 'f.ndjson');
    await writeFile(path, text);
    return path;
  };

  it('returns batches of non-blank lines with their numbers and resumable byte offsets', async () => {
    const path = await file('{"n":1}\n\n{"n":2}\n{"n":3}\n   \n{"n":4}');
    const reader = await StagedFileReader.open(path, { offset: 0, line: 1 });
    const first = await reader.nextBatch(2);
    expect(first.lines).toEqual([
      { line: 1, text: '{"n":1}' },
      { line: 3, text: '{"n":2}' },
    ]);
    expect(first).toMatchObject({ start: { offset: 0, line: 1 }, end: { offset: 17, line: 4 }, atEnd: false });
    await reader.close();

    const resumed = await StagedFileReader.open(path, first.end);
    const rest = await resumed.nextBatch(10);
    expect(rest.lines).toEqual([
      { line: 4, text: '{"n":3}' },
      { line: 6, text: '{"n":4}' },
    ]);
    expect(rest.atEnd).toBe(true);
    expect((await resumed.nextBatch(10)).lines).toEqual([]);
    await resumed.close();
  });

  it('marks a line over the length limit and one that is not UTF-8, and goes on after them', async () => {
    const long = `{"x":"${'a'.repeat(5000)}"}`;
    const path = await file(
      Buffer.concat([Buffer.from(`${long}\n`), Buffer.from([0x7b, 0xff, 0x7d, 0x0a]), Buffer.from('{"ok":1}\n')]),
    );
    const reader = await StagedFileReader.open(path, { offset: 0, line: 1 }, 1024);
    const batch = await reader.nextBatch(10);
    expect(batch.lines).toEqual([
      { line: 1, problem: 'line_too_long' },
      { line: 2, problem: 'invalid_encoding' },
      { line: 3, text: '{"ok":1}' },
    ]);
    await reader.close();
  });
});
