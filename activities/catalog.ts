import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { Catalog, CatalogOverride, defaultCatalog, mergeCatalog } from '../domain/catalog';

const CATALOG_FILE_ENV = 'CUSTODIAN_CATALOG_FILE';

/**
 * The data catalog: the defaults, overridden purpose by purpose and field by field by the JSON file named in
 * CUSTODIAN_CATALOG_FILE (`config.CUSTODIAN_CATALOG_FILE`). A bad file stops start-up with a message
 * naming the file and the fields (or the purpose without a legal basis).
 */
export const loadCatalog = (file: string | undefined): Catalog => {
  if (!file) return defaultCatalog;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const why = err instanceof SyntaxError ? 'not valid JSON' : (err as Error).message;
    throw new Error(`${CATALOG_FILE_ENV}=${file}: ${why}`, { cause: err });
  }
  const problems = (issues: z.core.$ZodIssue[]) =>
    issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ');
  const parsed = CatalogOverride.safeParse(json);
  if (!parsed.success) throw new Error(`${CATALOG_FILE_ENV}=${file}: ${problems(parsed.error.issues)}`);
  // The merged catalog is checked as a whole: a purpose the file adds needs its legal basis, from the file or the defaults.
  const merged = Catalog.safeParse(mergeCatalog(defaultCatalog, parsed.data));
  if (!merged.success) throw new Error(`${CATALOG_FILE_ENV}=${file}: ${problems(merged.error.issues)}`);
  return merged.data;
};
