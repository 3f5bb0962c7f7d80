import { describe, expect, it } from 'vitest';
import {
  blindIndexedFields,
  Catalog,
  catalogPurposes,
  CatalogOverride,
  classifyField,
  defaultCatalog,
  legalBasisOf,
  mergeCatalog,
  normaliseForIndex,
  unclassifiedNameProblem,
} from '../../domain/catalog';
import { catalogWith, workEmailEntry } from '../helpers/catalog';

describe('data catalog', () => {
  it('classifies the default credit-data fields', () => {
    const classes = (names: string[]) => names.map((n) => classifyField(defaultCatalog, n).entry.classification);
    expect(classes(['name', 'phone', 'email', 'address'])).toEqual(Array(4).fill('personal'));
    expect(classes(['idNumber', 'bankAccount', 'creditScore', 'creditHistory', 'loanBalance'])).toEqual(
      Array(5).fill('sensitive'),
    );
    expect(classes(['city', 'segment', 'customerSince'])).toEqual(Array(3).fill('general'));
    expect(Catalog.safeParse(defaultCatalog).success).toBe(true);
  });

  it('treats an unknown field as personal and unclassified, never as a prototype key', () => {
    for (const name of ['favouriteColour', 'constructor', 'toString']) {
      const c = classifyField(defaultCatalog, name);
      expect(c).toMatchObject({ classified: false, entry: { classification: 'personal' } });
    }
  });

  it('blind-indexes idNumber, phone and email', () => {
    expect(blindIndexedFields(defaultCatalog).sort()).toEqual(['email', 'idNumber', 'phone']);
  });

  it('merges an override field by field', () => {
    const override = CatalogOverride.parse({
      fields: {
        city: { classification: 'personal', purposes: ['analytics'], retention: 'P1Y' },
        passport: {
          classification: 'sensitive',
          purposes: ['identity-verification'],
          retention: 'P5Y',
          blindIndex: true,
        },
      },
    });
    const merged = mergeCatalog(defaultCatalog, override);
    expect(classifyField(merged, 'city').entry.classification).toBe('personal');
    expect(classifyField(merged, 'passport')).toMatchObject({ classified: true, entry: { blindIndex: true } });
    expect(classifyField(merged, 'name').entry.classification).toBe('personal');
    expect(catalogPurposes(merged).has('identity-verification')).toBe(true);
  });

  it('refuses an override that would store unclassified fields in clear, or a bad purpose', () => {
    expect(
      CatalogOverride.safeParse({ unclassified: { classification: 'general', purposes: ['x-y'], retention: 'P1Y' } })
        .success,
    ).toBe(false);
    expect(
      CatalogOverride.safeParse({
        fields: { a: { classification: 'personal', purposes: ['Bad Purpose'], retention: 'P1Y' } },
      }).success,
    ).toBe(false);
  });

  it('normalises a blind index as the catalog entry says, not by the field name', () => {
    expect(normaliseForIndex('email', ' A.B@Example.COM ')).toBe('a.b@example.com');
    expect(normaliseForIndex('phone', '+86 138-0000 0001')).toBe('8613800000001');
    expect(normaliseForIndex('idNumber', ' 990000 19900101001x ')).toBe('99000019900101001X');
    expect(normaliseForIndex(undefined, ' Ab ')).toBe('Ab');
    const catalog = catalogWith({ workEmail: workEmailEntry });
    expect(classifyField(catalog, 'workEmail').entry.normalise).toBe('email');
    expect(classifyField(catalog, 'email').entry.normalise).toBe('email');
  });

  it('holds unclassified field names to a policy, without quoting them', () => {
    expect(unclassifiedNameProblem('loyaltyTier')).toBeUndefined();
    expect(unclassifiedNameProblem('address2')).toBeUndefined();
    expect(unclassifiedNameProblem('x'.repeat(33))).toMatch(/longer than 32/);
    expect(unclassifiedNameProblem('zhang_13800000001')).toMatch(/more than 4 digits/);
    expect(unclassifiedNameProblem('zhang_13800000001')).not.toContain('zhang');
  });

  it('states a legal basis for every purpose the defaults name', () => {
    for (const purpose of catalogPurposes(defaultCatalog))
      expect(legalBasisOf(defaultCatalog, purpose), purpose).toBeDefined();
    expect(
      Object.fromEntries(
        [
          'transfer-notice',
          'consent-collection',
          'customer-service',
          'credit-assessment',
          'regulatory-reporting',
          'marketing',
          'analytics',
        ].map((p) => [p, legalBasisOf(defaultCatalog, p)]),
      ),
    ).toEqual({
      'transfer-notice': 'legal-obligation',
      'consent-collection': 'legal-obligation',
      'customer-service': 'contract',
      'credit-assessment': 'contract',
      'regulatory-reporting': 'legal-obligation',
      marketing: 'consent',
      analytics: 'consent',
    });
    expect(legalBasisOf(defaultCatalog, 'astrology')).toBeUndefined();
    expect(legalBasisOf(defaultCatalog, 'constructor')).toBeUndefined();
  });

  it('refuses a catalog whose fields name a purpose without a legal basis, naming the purpose and the fields', () => {
    const override = CatalogOverride.parse({
      fields: { loyaltyTier: { classification: 'personal', purposes: ['loyalty', 'marketing'], retention: 'P1Y' } },
    });
    const result = Catalog.safeParse(mergeCatalog(defaultCatalog, override));
    expect(result.success).toBe(false);
    expect(result.error?.issues).toEqual([
      expect.objectContaining({
        path: ['purposes', 'loyalty'],
        message: expect.stringMatching(/^purpose loyalty \(named by loyaltyTier\) has no legal basis: add "purposes"/),
      }),
    ]);
    const withBasis = CatalogOverride.parse({ ...override, purposes: { loyalty: { legalBasis: 'consent' } } });
    expect(legalBasisOf(Catalog.parse(mergeCatalog(defaultCatalog, withBasis)), 'loyalty')).toBe('consent');
  });

  it('merges purposes one by one and refuses an unknown legal basis', () => {
    const merged = mergeCatalog(
      defaultCatalog,
      CatalogOverride.parse({ purposes: { analytics: { legalBasis: 'legitimate-interest' } } }),
    );
    expect(legalBasisOf(merged, 'analytics')).toBe('legitimate-interest');
    expect(legalBasisOf(merged, 'marketing')).toBe('consent');
    expect(CatalogOverride.safeParse({ purposes: { analytics: { legalBasis: 'because' } } }).success).toBe(false);
    expect(CatalogOverride.safeParse({ purposes: { analytics: 'consent' } }).success).toBe(false);
  });
});
