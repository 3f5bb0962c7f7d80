import { GENESIS_HASH, walkChain, type ChainBreak, type DbOrTx } from './audit';
import { loadCheckpoints, type CheckpointSource } from './audit-checkpoints';

export interface AuditVerification {
  valid: boolean;
  /** Entries that hold, from the first. */
  entries: number;
  entriesPerSecond: number;
  /** Hash of the last entry that holds. */
  headHash: string;
  /** The first entry that does not hold, or the first one a checkpoint shows missing or rewritten. */
  firstBrokenSeq?: number;
  reason?: string;
  /** Checkpoints read from the database and the file. */
  checkpoints: number;
  /** The seq of the newest checkpoint the chain matches; null when none does. */
  anchoredSeq: number | null;
  /** Entries after `anchoredSeq`: they hold, but no checkpoint vouches for them yet. */
  unanchored: number;
  /** Checkpoints that do not hold: bad signature, broken link, in the file but not in the database. */
  checkpointProblems: string[];
}

/**
 * Recomputes the whole chain in order and names the first entry that does not hold. With checkpoints, the
 * entry at each checkpoint's seq must carry its head hash: a cut tail shows as the first missing entry, a
 * rehashed rewrite as the entries after the last checkpoint that still matches.
 */
export const verifyAuditChain = async (
  db: DbOrTx,
  options: { checkpoints?: CheckpointSource; pageSize?: number } = {},
): Promise<AuditVerification> => {
  const started = performance.now();
  const loaded = options.checkpoints
    ? await loadCheckpoints(db, options.checkpoints)
    : { anchors: [], checkpoints: 0, problems: [] };
  const anchors = [...loaded.anchors].sort((a, b) => a.seq - b.seq || a.number - b.number);
  let anchoredSeq: number | null = null;
  let next = 0;
  const matchAnchors = (seq: number, hash: string): ChainBreak | undefined => {
    for (; next < anchors.length && anchors[next]!.seq === seq; next++) {
      const anchor = anchors[next]!;
      if (anchor.headHash !== hash) {
        const from = (anchoredSeq ?? 0) + 1;
        return {
          seq: from,
          reason: `entry ${seq} does not carry the head hash of checkpoint ${anchor.number}: an entry from ${from} to ${seq} was rewritten`,
        };
      }
      anchoredSeq = seq;
    }
    return undefined;
  };
  const genesis = { seq: 0, hash: GENESIS_HASH };
  matchAnchors(genesis.seq, genesis.hash);
  const walk = await walkChain(db, genesis, matchAnchors, undefined, options.pageSize);
  let broken = walk.broken;
  const newest = anchors.at(-1);
  if (!broken && newest && newest.seq > walk.lastSeq) {
    const missing = walk.lastSeq + 1;
    broken = {
      seq: missing,
      reason: `entry ${missing} is missing: checkpoint ${newest.number} anchors the chain up to seq ${newest.seq}`,
    };
  }
  const seconds = Math.max((performance.now() - started) / 1000, 1e-3);
  return {
    valid: !broken && loaded.problems.length === 0,
    entries: walk.checked,
    entriesPerSecond: Math.round(walk.checked / seconds),
    headHash: walk.headHash,
    ...(broken && { firstBrokenSeq: broken.seq, reason: broken.reason }),
    checkpoints: loaded.checkpoints,
    anchoredSeq,
    unanchored: walk.lastSeq - (anchoredSeq ?? 0),
    checkpointProblems: loaded.problems,
  };
};
