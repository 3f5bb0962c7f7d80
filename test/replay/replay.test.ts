import { readdirSync, readFileSync } from 'node:fs';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { bundleWorkflows } from '../../runtime/worker';
import * as workflows from '../../workflows';

const historiesDir = new URL('./histories/', import.meta.url);

interface Recorded {
  workflowType: string;
  workflowId: string;
  history: unknown;
}

const recorded: Recorded[] = readdirSync(historiesDir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(new URL(f, historiesDir), 'utf8')) as Recorded);

describe('replay gate', () => {
  it('has a recorded history for every workflow type', () => {
    const exported = Object.entries(workflows)
      .filter(([, value]) => typeof value === 'function')
      .map(([name]) => name)
      .sort();
    expect(exported.length).toBeGreaterThan(0);
    expect(recorded.map((r) => r.workflowType).sort()).toEqual(expect.arrayContaining(exported));
  });

  it('replays every recorded history without a determinism violation', async () => {
    const workflowBundle = await bundleWorkflows();
    const results = Worker.runReplayHistories(
      { workflowBundle },
      recorded.map((r) => ({ workflowId: r.workflowId, history: historyFromJSON(r.history) })),
    );
    const failures: string[] = [];
    let replayed = 0;
    for await (const result of results) {
      replayed += 1;
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
    expect(replayed).toBe(recorded.length);
  });
});
