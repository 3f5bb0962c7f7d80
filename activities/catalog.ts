import { readFileSync } from 'node:fs';
import { Catalog, CatalogOverride, defaultCatalog, mergeCatalog } from '../domain/catalog';

const CATALOG_FILE_ENV = 'CUSTODIAN_CATALOG_FILE';

/**
 * The data catalog: the defaults, overridden field by field by the JSON file named in
 * CUSTODIAN_CATALOG_FILE (`config.CUSTODIAN_CATALOG_FILE`). A bad file stops start-up with a message
 * naming the file and the fields.
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
  const parsed = CatalogOverride.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
    throw new Error(`${CATALOG_FILE_ENV}=${file}: ${problems.join('; ')}`);
  }
  return Catalog.parse(mergeCatalog(defaultCatalog, parsed.data));
};
