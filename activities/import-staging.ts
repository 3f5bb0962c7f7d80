import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ImportCursor } from '../domain/subject-import';

export const stagedFilePath = (stagingDir: string, importId: string): string => join(stagingDir, `${importId}.ndjson`);

export const removeStagedFile = (stagingDir: string, importId: string): Promise<void> =>
  rm(stagedFilePath(stagingDir, importId), { force: true });

export type StagingErrorCode = 'not-ndjson' | 'empty' | 'too-large';

/** The upload is refused; the message names the problem, never the content. */
export class StagingError extends Error {
  override name = 'StagingError';
  constructor(
    readonly code: StagingErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface StagedFile {
  path: string;
  bytes: number;
  /** Non-blank lines. */
  lines: number;
  sha256: string;
}

const NEWLINE = 0x0a;
const isBlank = (b: number) => b === 0x20 || b === 0x09 || b === 0x0d;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** Counts non-blank lines across chunks and checks that the first one starts like a JSON object. */
class LineCounter {
  lines = 0;
  private inLine = false;
  private sawFirst = false;
  private atStart = true;

  feed(chunk: Buffer): void {
    let i = 0;
    if (this.atStart) {
      this.atStart = false;
      if (chunk.subarray(0, 3).equals(BOM)) i = 3;
    }
    while (i < chunk.length) {
      if (!this.inLine) {
        const b = chunk[i]!;
        if (b === NEWLINE || isBlank(b)) {
          i += 1;
          continue;
        }
        if (!this.sawFirst && b !== 0x7b) {
          throw new StagingError('not-ndjson', 'the body is not NDJSON: its first line does not start with "{"');
        }
        this.sawFirst = true;
        this.inLine = true;
        this.lines += 1;
      }
      const end = chunk.indexOf(NEWLINE, i);
      if (end < 0) return;
      this.inLine = false;
      i = end + 1;
    }
  }
}

/**
 * Streams an upload into `<stagingDir>/<importId>.ndjson` (mode 0600) without holding it in memory.
 * A body whose first line cannot be a JSON object is refused at its first bytes.
 */
export const stageImportFile = async (
  stagingDir: string,
  importId: string,
  body: AsyncIterable<Uint8Array> | Readable,
  options: { maxBytes: number },
): Promise<StagedFile> => {
  await mkdir(stagingDir, { recursive: true, mode: 0o700 });
  const path = stagedFilePath(stagingDir, importId);
  const partial = `${path}.partial`;
  const file = await open(partial, 'wx', 0o600);
  const counter = new LineCounter();
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const piece of body as AsyncIterable<Uint8Array>) {
      const chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
      bytes += chunk.length;
      if (bytes > options.maxBytes) {
        throw new StagingError('too-large', `the import file exceeds ${options.maxBytes} bytes`);
      }
      counter.feed(chunk);
      hash.update(chunk);
      await file.write(chunk);
    }
    if (counter.lines === 0) throw new StagingError('empty', 'the import file has no lines');
    await file.sync();
    await file.close();
    await rename(partial, path);
    return { path, bytes, lines: counter.lines, sha256: hash.digest('hex') };
  } catch (err) {
    await file.close().catch(() => {});
    await rm(partial, { force: true });
    throw err;
  }
};

/** One physical line: its text, or why it cannot be read. Blank lines are never returned. */
export type RawLine = { line: number; text: string } | { line: number; problem: 'line_too_long' | 'invalid_encoding' };

export interface LineBatch {
  lines: RawLine[];
  start: ImportCursor;
  end: ImportCursor;
  /** True when the file has no lines after this batch. */
  atEnd: boolean;
}

const READ_BYTES = 1 << 20;

/** Reads a staged file forward from a byte offset, a batch of lines at a time. */
export class StagedFileReader {
  private buffer = Buffer.alloc(0);
  /** File offset of buffer[0]. */
  private bufferOffset: number;
  private eof = false;

  private constructor(
    private readonly file: FileHandle,
    private cursor: ImportCursor,
    private readonly maxLineBytes: number,
  ) {
    this.bufferOffset = cursor.offset;
  }

  static async open(path: string, cursor: ImportCursor, maxLineBytes = 1 << 20): Promise<StagedFileReader> {
    return new StagedFileReader(await open(path, 'r'), cursor, maxLineBytes);
  }

  get position(): ImportCursor {
    return this.cursor;
  }

  /** Moves to a cursor known to start a line (the end of a committed batch). */
  seek(cursor: ImportCursor): void {
    this.cursor = cursor;
    this.buffer = Buffer.alloc(0);
    this.bufferOffset = cursor.offset;
    this.eof = false;
  }

  close(): Promise<void> {
    return this.file.close();
  }

  private async fill(): Promise<boolean> {
    if (this.eof) return false;
    const chunk = Buffer.allocUnsafe(READ_BYTES);
    const { bytesRead } = await this.file.read(chunk, 0, READ_BYTES, this.bufferOffset + this.buffer.length);
    if (bytesRead === 0) {
      this.eof = true;
      return false;
    }
    this.buffer = this.buffer.length
      ? Buffer.concat([this.buffer, chunk.subarray(0, bytesRead)])
      : chunk.subarray(0, bytesRead);
    return true;
  }

  private consume(bytes: number): void {
    this.buffer = this.buffer.subarray(bytes);
    this.bufferOffset += bytes;
  }

  /** The next physical line's bytes (without its newline), or a too-long marker; undefined at the end. */
  private async nextPhysical(): Promise<Buffer | 'too_long' | undefined> {
    let scanned = 0;
    for (;;) {
      const end = this.buffer.indexOf(NEWLINE, scanned);
      if (end >= 0) {
        const bytes = this.buffer.subarray(0, end);
        this.consume(end + 1);
        return bytes.length > this.maxLineBytes ? 'too_long' : bytes;
      }
      scanned = this.buffer.length;
      if (this.buffer.length > this.maxLineBytes) {
        await this.skipToNewline();
        return 'too_long';
      }
      if (!(await this.fill())) {
        if (this.buffer.length === 0) return undefined;
        const bytes = this.buffer;
        this.consume(bytes.length);
        return bytes;
      }
    }
  }

  private async skipToNewline(): Promise<void> {
    for (;;) {
      const end = this.buffer.indexOf(NEWLINE);
      if (end >= 0) return this.consume(end + 1);
      this.consume(this.buffer.length);
      if (!(await this.fill())) return;
    }
  }

  /** Up to `maxLines` non-blank lines; the end cursor is just past the last line returned. */
  async nextBatch(maxLines: number): Promise<LineBatch> {
    const start = this.cursor;
    const lines: RawLine[] = [];
    while (lines.length < maxLines) {
      const atFileStart = this.bufferOffset === 0;
      const physical = await this.nextPhysical();
      if (physical === undefined) break;
      const line = this.cursor.line;
      this.cursor = { offset: this.bufferOffset, line: line + 1 };
      if (physical === 'too_long') {
        lines.push({ line, problem: 'line_too_long' });
        continue;
      }
      const bytes = atFileStart && physical.subarray(0, 3).equals(BOM) ? physical.subarray(3) : physical;
      if (bytes.every(isBlank)) continue;
      if (!isUtf8(bytes)) {
        lines.push({ line, problem: 'invalid_encoding' });
        continue;
      }
      lines.push({ line, text: bytes.toString('utf8') });
    }
    return { lines, start, end: this.cursor, atEnd: await this.atEnd() };
  }

  /** Whether only blank lines remain. */
  private async atEnd(): Promise<boolean> {
    for (;;) {
      const firstContent = this.buffer.findIndex((b) => b !== NEWLINE && !isBlank(b));
      if (firstContent >= 0) return false;
      if (!(await this.fill())) return true;
    }
  }
}
