import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { freePort } from '../../runtime/ports';

const scratch = mkdtempSync(join(tmpdir(), 'custodian-start-'));
// As root, the embedded cluster runs as `postgres`, which must be able to enter the folder.
chmodSync(scratch, 0o711);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Every process whose parent chain leads to `root`, read from /proc. */
const descendants = (root: number): number[] => {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // Gone while we looked.
    }
  }
  const found: number[] = [];
  const walk = (pid: number) => {
    for (const [child, parent] of parents) {
      if (parent !== pid) continue;
      found.push(child);
      walk(child);
    }
  };
  walk(root);
  return found;
};

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
};

const commandLine = (pid: number) => {
  try {
    return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()}`;
  } catch {
    return `${pid} (gone)`;
  }
};

const npmStart = (env: Record<string, string>) => {
  const { DATABASE_URL: _db, TEMPORAL_ADDRESS: _t, ...inherited } = process.env;
  // Its own process group, so a signal to the group is what Ctrl-C in a terminal sends.
  return spawn('npm', ['start', '--silent'], {
    env: { ...inherited, TEMPORAL_CLI_PATH: inject('temporalCliPath'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
};

const waitForLine = (child: ChildProcess, pattern: RegExp, output: string[]) =>
  new Promise<RegExpMatchArray>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output.push(chunk.toString('utf8'));
      const match = output.join('').match(pattern);
      if (match) resolve(match);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => reject(new Error(`exited with ${code ?? signal}:\n${output.join('')}`)));
  });

const exited = (child: ChildProcess) =>
  new Promise<number | string | null>((resolve) =>
    child.exitCode !== null || child.signalCode !== null
      ? resolve(child.exitCode ?? child.signalCode)
      : child.once('exit', (code, signal) => resolve(code ?? signal)),
  );

describe('npm start on embedded defaults', () => {
  it('comes up, serves /readyz, accepts the printed admin key and stops cleanly on Ctrl-C', async () => {
    const dataDir = join(scratch, 'data');
    const port = await freePort();
    const child = npmStart({
      CUSTODIAN_DATA_DIR: dataDir,
      PORT: String(port),
      TEMPORAL_UI_PORT: String(await freePort()),
      CUSTODIAN_AUDIT_CHECKPOINT_INTERVAL_MS: '1000',
    });
    const output: string[] = [];
    try {
      await waitForLine(child, /Ready: API/, output);
      const adminKey = output.join('').match(/^\s+(cust_\S+)$/m)?.[1];
      expect(adminKey).toBeDefined();
      expect(readFileSync(join(dataDir, 'admin-api-key'), 'utf8').trim()).toBe(adminKey);
      expect(statSync(join(dataDir, 'admin-api-key')).mode & 0o777).toBe(0o600);
      expect(statSync(join(dataDir, 'keyring.json')).mode & 0o777).toBe(0o600);
      expect(output.join('')).not.toMatch(/"(blindIndexKey|signingKey|keks)"/);

      const base = `http://127.0.0.1:${port}`;
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      const created = await fetch(`${base}/v1/users`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'dpo', role: 'owner' }),
      });
      expect(created.status).toBe(201);
      expect((await fetch(`${base}/v1/users`, { method: 'POST', body: '{}' })).status).toBe(401);

      // The worker's housekeeping anchors the chain (the first admin's creation at least) in the append-only sink.
      const sink = join(dataDir, 'audit-checkpoints.jsonl');
      const anchoredSeq = () => {
        const lines = existsSync(sink) ? readFileSync(sink, 'utf8').trim().split('\n').filter(Boolean) : [];
        return lines.length ? (JSON.parse(lines.at(-1)!) as { seq: number }).seq : 0;
      };
      const anchorDeadline = Date.now() + 20_000;
      while (anchoredSeq() < 3 && Date.now() < anchorDeadline) await new Promise((r) => setTimeout(r, 100));
      expect(anchoredSeq()).toBeGreaterThanOrEqual(3);
      expect(statSync(sink).mode & 0o777).toBe(0o600);

      const tree = descendants(child.pid!);
      expect(tree.length).toBeGreaterThan(1);
      process.kill(-child.pid!, 'SIGINT');
      // npm itself takes the group's SIGINT as a terminal's Ctrl-C would; Custodian under it stops in order.
      expect([0, 'SIGINT']).toContain(await exited(child));
      const deadline = Date.now() + 20_000;
      while ((tree.some(alive) || !output.join('').includes('Stopped.')) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(output.join('').split('\n').slice(-6).join('\n')).toContain('Stopped.');
      expect(tree.filter(alive).map(commandLine)).toEqual([]);
      expect(output.join('')).toContain('Stopped.');
      expect(output.join('')).not.toMatch(/stopping \S+ failed/);
    } finally {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
    }
  }, 240_000);

  it('refuses a wrong environment value with one line naming it and leaves no data directory', async () => {
    const dataDir = join(scratch, 'bad-env');
    const child = npmStart({ CUSTODIAN_DATA_DIR: dataDir, PORT: 'not-a-port' });
    const output: string[] = [];
    child.stdout!.on('data', (c: Buffer) => output.push(c.toString()));
    child.stderr!.on('data', (c: Buffer) => output.push(c.toString()));
    expect(await exited(child)).toBe(1);
    const text = output.join('').trim();
    expect(text).toMatch(/^custodian start: PORT: /m);
    expect(text.split('\n').filter((l) => l.includes('custodian start'))).toHaveLength(1);
    expect(existsSync(dataDir)).toBe(false);
  });
});
