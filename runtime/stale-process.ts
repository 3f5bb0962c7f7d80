import { existsSync, readFileSync, readdirSync } from 'node:fs';

/** What /proc says about a process (Linux); undefined where there is no /proc or no such process. */
export interface ProcessInfo {
  pid: number;
  ppid: number;
  argv: string[];
}

export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Alive and not a zombie (an exited child its parent has not reaped yet). */
export const isRunning = (pid: number): boolean => {
  if (!isAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return existsSync('/proc') ? false : true;
  }
};

export const processInfo = (pid: number): ProcessInfo | undefined => {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    // The command name is in parentheses and may hold spaces: the fields after the last ')' are fixed.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return { pid, ppid, argv };
  } catch {
    return undefined;
  }
};

/** Every process whose command line satisfies `matches` (Linux; none elsewhere). */
export const findProcesses = (matches: (argv: string[]) => boolean): ProcessInfo[] => {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  return entries
    .filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid)
    .map((e) => processInfo(Number(e)))
    .filter((p): p is ProcessInfo => p !== undefined && matches(p.argv));
};

/**
 * A server is orphaned when the process that started it is gone: after a `kill -9` of `custodian start`
 * its children are re-parented (to init or a subreaper), so their parent is no longer a Node process.
 */
export const isOrphaned = (server: ProcessInfo): boolean => {
  const parent = processInfo(server.ppid);
  if (!parent || server.ppid <= 1) return true;
  return !/(^|\/)node(js)?$/.test(parent.argv[0] ?? '');
};

/** `signal` (SIGTERM), then SIGKILL after `graceMs`; resolves once the process is gone. */
export const stopProcess = async (pid: number, graceMs = 10_000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
  const gone = async (deadline: number) => {
    while (Date.now() < deadline) {
      if (!isRunning(pid)) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return !isRunning(pid);
  };
  process.kill(pid, signal);
  if (await gone(Date.now() + graceMs)) return;
  process.kill(pid, 'SIGKILL');
  if (!(await gone(Date.now() + 5_000))) throw new Error(`process ${pid} did not exit after SIGKILL`);
};
