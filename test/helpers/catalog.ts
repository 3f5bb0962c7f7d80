import { Catalog, CatalogOverride, defaultCatalog, mergeCatalog } from '../../domain/catalog';

/** An operator's catalog entry for a field the defaults lack: a blind-indexed work email. */
export const workEmailEntry = {
  classification: 'personal',
  purposes: ['customer-service'],
  retention: 'P1Y',
  blindIndex: true,
  normalise: 'email',
} as const;

/** The default catalog with an operator's override of these fields, parsed as a catalog file would be. */
export const catalogWith = (fields: Record<string, unknown>): Catalog =>
  Catalog.parse(mergeCatalog(defaultCatalog, CatalogOverride.parse({ fields })));
