import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCatalog } from '../../activities/catalog';
import { defaultCatalog, legalBasisOf } from '../../domain/catalog';

const dir = mkdtempSync(join(tmpdir(), 'custodian-catalog-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(content));
  return path;
};

describe('the catalog override file', () => {
  it('is the defaults without a file', () => {
    expect(loadCatalog(undefined)).toBe(defaultCatalog);
  });

  it('adds purposes with their legal basis and fields that name them', () => {
    const catalog = loadCatalog(
      file('good.json', {
        purposes: { loyalty: { legalBasis: 'consent' }, analytics: { legalBasis: 'legitimate-interest' } },
        fields: { loyaltyTier: { classification: 'personal', purposes: ['loyalty'], retention: 'P1Y' } },
      }),
    );
    expect(legalBasisOf(catalog, 'loyalty')).toBe('consent');
    expect(legalBasisOf(catalog, 'analytics')).toBe('legitimate-interest');
    expect(legalBasisOf(catalog, 'customer-service')).toBe('contract');
  });

  it('stops start-up naming the file and a purpose a field names without a legal basis', () => {
    const path = file('no-basis.json', {
      fields: { loyaltyTier: { classification: 'personal', purposes: ['loyalty'], retention: 'P1Y' } },
    });
    expect(() => loadCatalog(path)).toThrow(
      `CUSTODIAN_CATALOG_FILE=${path}: purposes.loyalty: purpose loyalty (named by loyaltyTier) has no legal basis`,
    );
    const unclassified = file('unclassified.json', {
      unclassified: { classification: 'personal', purposes: ['triage'], retention: 'P1Y' },
    });
    expect(() => loadCatalog(unclassified)).toThrow(/purposes\.triage: purpose triage \(named by unclassified\)/);
    const badBasis = file('bad-basis.json', { purposes: { marketing: { legalBasis: 'because' } } });
    expect(() => loadCatalog(badBasis)).toThrow(new RegExp(`${badBasis}: purposes\\.marketing\\.legalBasis: `));
  });
});
