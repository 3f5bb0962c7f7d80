import { describe, expect, it } from 'vitest';
import { defaultCatalog, mergeCatalog } from '../../domain/catalog';
import { erasureAfterWithdrawal } from '../../domain/withdrawal-erasure';

const entry = (purposes: string[]) => ({
  classification: 'personal' as const,
  purposes,
  retention: 'P1Y',
  blindIndex: false,
});
const catalog = mergeCatalog(defaultCatalog, {
  purposes: { newsletter: { legalBasis: 'consent' }, offers: { legalBasis: 'consent' } },
  fields: { newsletterEmail: entry(['newsletter']), offerPhone: entry(['newsletter', 'offers']) },
});
const bases = (fields: string[], granted: string[] = [], retained = false) => ({
  fields,
  grantedPurposes: new Set(granted),
  retained,
});

describe('erasure after a withdrawal', () => {
  it('takes the whole subject when nothing it holds keeps a basis', () => {
    expect(erasureAfterWithdrawal(catalog, 'newsletter', bases(['newsletterEmail', 'offerPhone']))).toEqual({
      kind: 'subject',
    });
  });

  it('takes only the values that rested on the consent alone when others keep a basis', () => {
    // name keeps customer-service (contract).
    expect(erasureAfterWithdrawal(catalog, 'newsletter', bases(['name', 'newsletterEmail', 'offerPhone']))).toEqual({
      kind: 'fields',
      fields: ['newsletterEmail', 'offerPhone'],
    });
    // Another consent granted for offers keeps offerPhone.
    expect(
      erasureAfterWithdrawal(catalog, 'newsletter', bases(['name', 'newsletterEmail', 'offerPhone'], ['offers'])),
    ).toEqual({ kind: 'fields', fields: ['newsletterEmail'] });
  });

  it('takes nothing while another basis covers every value the purpose names', () => {
    // email and segment: customer-service (contract) besides marketing.
    expect(erasureAfterWithdrawal(catalog, 'marketing', bases(['email', 'segment']))).toEqual({
      kind: 'none',
      reason: 'other-basis',
    });
    // A second consent for the same purpose is still granted.
    expect(erasureAfterWithdrawal(catalog, 'newsletter', bases(['newsletterEmail'], ['newsletter']))).toEqual({
      kind: 'none',
      reason: 'other-basis',
    });
  });

  it('takes nothing for a purpose that is not consent-based, under a retention obligation, or without data', () => {
    expect(erasureAfterWithdrawal(catalog, 'customer-service', bases(['address']))).toEqual({
      kind: 'none',
      reason: 'not-consent-based',
    });
    expect(erasureAfterWithdrawal(catalog, 'newsletter', bases(['newsletterEmail'], [], true))).toEqual({
      kind: 'none',
      reason: 'retention-obligation',
    });
    expect(erasureAfterWithdrawal(catalog, 'newsletter', bases([]))).toEqual({ kind: 'none', reason: 'no-data' });
  });

  it('judges an unclassified field by the catalog’s fallback entry (data-governance, a legal obligation)', () => {
    expect(erasureAfterWithdrawal(catalog, 'newsletter', bases(['newsletterEmail', 'legacyNote']))).toEqual({
      kind: 'fields',
      fields: ['newsletterEmail'],
    });
  });
});
