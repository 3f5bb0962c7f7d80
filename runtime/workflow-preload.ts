import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const workflowsDir = fileURLToPath(new URL('../workflows/', import.meta.url));
const domainDir = fileURLToPath(new URL('../domain/', import.meta.url));

/** Value imports (not `import type`) of `<prefix><name>` in a module's source. */
const valueImports = (source: string, prefix: string): string[] =>
  [...source.matchAll(/^import\s+(?!type\s)[^;]*?from\s+'([^']+)';/gms)]
    .map((m) => m[1]!)
    .filter((spec) => spec.startsWith(prefix))
    .map((spec) => spec.slice(prefix.length));

/**
 * Modules the workflow bundle loads once per worker thread instead of once per workflow run: the `domain/` modules the
 * workflows import (and those import), found by reading the imports, and with them the zod modules they use (webpack
 * drops a bare `zod` entry as side-effect free, so zod is reached through them). Temporal's reusable V8 context
 * evaluates every other bundled module afresh for each new run, so without this each run rebuilt every zod schema of
 * `domain/` (≈ 6 of the workflow thread's 11 busy seconds replaying 200 incident histories; see docs/decisions.md).
 * Preloaded modules are shared and deep-frozen, which is safe only for modules without per-run state: `domain/` is
 * pure (no workflow API, no module-level mutable state) by the project's rules, and a test holds this list to the
 * bundle's `domain/` modules.
 */
export const workflowPreloadModules = (): string[] => {
  const found = new Set<string>();
  const visit = (name: string) => {
    if (found.has(name)) return;
    found.add(name);
    valueImports(readFileSync(`${domainDir}${name}.ts`, 'utf8'), './').forEach(visit);
  };
  for (const file of readdirSync(workflowsDir).filter((f) => f.endsWith('.ts')))
    valueImports(readFileSync(`${workflowsDir}${file}`, 'utf8'), '../domain/').forEach(visit);
  return [...found].sort().map((name) => `${domainDir}${name}.ts`);
};
