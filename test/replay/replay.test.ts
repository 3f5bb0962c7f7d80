import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { bundleWorkflows } from '../../runtime/worker';
import * as workflows from '../../workflows';
import { scenarios } from './scenarios';

const historiesDir = new URL('./histories/', import.meta.url);

interface Recorded {
  workflowType: string;
  scenario: string;
  workflowId: string;
  history: unknown;
}

/** `histories/<workflowType>/<scenario>.json`, each checked against the folder and file it sits in. */
const recorded: Recorded[] = readdirSync(historiesDir, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) =>
    readdirSync(new URL(`${d.name}/`, historiesDir))
      .filter((f) => f.endsWith('.json'))
      .map((f) => {
        const r = JSON.parse(readFileSync(new URL(`${d.name}/${f}`, historiesDir), 'utf8')) as Recorded;
        return { ...r, workflowType: d.name, scenario: f.slice(0, -'.json'.length) };
      }),
  );

const key = (type: string, scenario: string) => `${type}/${scenario}`;
const declared = Object.entries(scenarios).flatMap(([type, named]) => Object.keys(named).map((s) => key(type, s)));

describe('replay gate', () => {
  it('declares scenarios for every exported workflow type', () => {
    const exported = Object.entries(workflows)
      .filter(([, value]) => typeof value === 'function')
      .map(([name]) => name)
      .sort();
    expect(exported.length).toBeGreaterThan(0);
    const withoutScenario = exported.filter((type) => Object.keys(scenarios[type] ?? {}).length === 0);
    expect(withoutScenario, 'workflow types without a declared scenario').toEqual([]);
  });

  it('has a recorded history for every declared scenario, and none for an undeclared one', () => {
    const have = new Set(recorded.map((r) => key(r.workflowType, r.scenario)));
    expect(
      declared.filter((k) => !have.has(k)),
      'declared scenarios without a history (npm run replay:record)',
    ).toEqual([]);
    expect(
      [...have].filter((k) => !declared.includes(k)),
      'histories of scenarios no longer declared',
    ).toEqual([]);
    expect(existsSync(new URL('selfCheck.json', historiesDir)), 'a history outside histories/<type>/').toBe(false);
  });

  it('replays every recorded history without a determinism violation', async () => {
    const workflowBundle = await bundleWorkflows();
    const results = Worker.runReplayHistories(
      { workflowBundle },
      recorded.map((r) => ({ workflowId: r.workflowId, history: historyFromJSON(r.history) })),
    );
    const names = new Map(recorded.map((r) => [r.workflowId, key(r.workflowType, r.scenario)]));
    const failures: string[] = [];
    let replayed = 0;
    for await (const result of results) {
      replayed += 1;
      if (result.error) failures.push(`${names.get(result.workflowId)}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
    expect(replayed).toBe(recorded.length);
  });
});
