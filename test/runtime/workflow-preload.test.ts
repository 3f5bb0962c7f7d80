import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { bundleWorkflows } from '../../runtime/worker';
import { workflowPreloadModules } from '../../runtime/workflow-preload';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('workflow bundle preloading', () => {
  it('preloads exactly the domain modules the bundle holds, and only modules without workflow APIs', async () => {
    const preloaded = workflowPreloadModules();
    const { code } = await bundleWorkflows();
    const bundledDomain = [...code.matchAll(/^\/\*\*\*\/ "\.\/(domain\/[^"]+)"/gm)].map((m) => `${root}${m[1]}`);
    expect(bundledDomain.length).toBeGreaterThan(5);
    expect([...preloaded].sort()).toEqual([...new Set(bundledDomain)].sort());
    // The bundler's entry requires each of them when the worker thread's context is built, before any run exists.
    const preloadFn = /exports\.preloadModules = function preloadModules\(\) \{([\s\S]*?)\n\}/.exec(code)?.[1] ?? '';
    for (const file of preloaded) expect(preloadFn).toContain(`"./${file.slice(root.length)}"`);
    // A preloaded module runs before any workflow exists and is shared by every run: no workflow API, no per-run state.
    for (const file of preloaded) {
      const source = readFileSync(file, 'utf8');
      expect(source, file).not.toMatch(/@temporalio\/workflow/);
      expect(source, file).not.toMatch(/^(export )?let /m);
    }
  });
});
