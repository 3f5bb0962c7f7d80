import { describe, expect, it } from 'vitest';
import {
  assessQuality,
  isValidCreditScore,
  isValidEmail,
  isValidPastDate,
  isValidPhone,
  isValidPrcResidentId,
  prcIdCheckCharacter,
  QualityThresholds,
  renderQualityBreach,
} from '../../domain/quality';

const today = new Date('2026-06-01T00:00:00Z');
const withCheck = (first17: string) => `${first17}${prcIdCheckCharacter(first17)}`;

describe('PRC resident ID (GB 11643)', () => {
  it('accepts the standard example and its lower-case x, computes the check character', () => {
    expect(prcIdCheckCharacter('11010519491231002')).toBe('X');
    expect(isValidPrcResidentId('11010519491231002X', today)).toBe(true);
    expect(isValidPrcResidentId('11010519491231002x', today)).toBe(true);
    expect(isValidPrcResidentId(withCheck('44030420000229123'), today)).toBe(true);
  });
  it('refuses a wrong check character, length, region 0, impossible or future or too old birth dates', () => {
    expect(isValidPrcResidentId('110105194912310021', today)).toBe(false);
    expect(isValidPrcResidentId('11010519491231002', today)).toBe(false);
    expect(isValidPrcResidentId(withCheck('01010519491231002'), today)).toBe(false);
    expect(isValidPrcResidentId(withCheck('44030420010229123'), today)).toBe(false); // 2001 is no leap year
    expect(isValidPrcResidentId(withCheck('44030420270101123'), today)).toBe(false); // born after today
    expect(isValidPrcResidentId(withCheck('44030418991231123'), today)).toBe(false); // before 1900
  });
});

describe('other validators', () => {
  it('phones: E.164 and mainland mobiles with separators; CN mobiles must start 13-19', () => {
    for (const ok of ['13812345678', '+86 138-1234-5678', '+44 20 7946 0958', '(010) 6552 9988'])
      expect(isValidPhone(ok), ok).toBe(true);
    for (const bad of ['12345', '12812345678', '+86 12812345678', 'call me', '1381234567a'])
      expect(isValidPhone(bad), bad).toBe(false);
  });
  it('e-mail, credit score range and past dates', () => {
    expect(isValidEmail('li.wei@example.com.cn')).toBe(true);
    for (const bad of ['not-an-email', 'a@b', 'a b@example.com', '@example.com']) expect(isValidEmail(bad)).toBe(false);
    const range = { min: 300, max: 850 };
    expect([isValidCreditScore('300', range), isValidCreditScore('850', range)]).toEqual([true, true]);
    expect([
      isValidCreditScore('851', range),
      isValidCreditScore('7.5', range),
      isValidCreditScore('x', range),
    ]).toEqual([false, false, false]);
    expect(isValidPastDate('2020-02-29', today)).toBe(true);
    expect(isValidPastDate('2020-02-30', today)).toBe(false);
    expect(isValidPastDate('2026-06-02', today)).toBe(false);
    expect(isValidPastDate('yesterday', today)).toBe(false);
  });
});

describe('assessQuality', () => {
  it('reports per field and names every breached threshold', () => {
    const t = QualityThresholds.parse({});
    const report = assessQuality(
      { subjects: 10, stale: 6, fields: { name: { present: 10, invalid: 0 }, phone: { present: 8, invalid: 1 } } },
      { phone: { duplicated: 2, groups: 1 } },
      { grantedConsentOnDestroyed: 1, destroyedWithData: 0, encryptedWithoutKey: 0 },
      t,
    );
    expect(report.fields.phone).toEqual({
      present: 8,
      missing: 2,
      completeness: 0.8,
      invalid: 1,
      duplicated: 2,
      duplicateGroups: 1,
    });
    expect(report.fields.idNumber).toMatchObject({ present: 0, missing: 10, invalid: 0 });
    expect(report.breaches.map((b) => `${b.check}:${b.field ?? ''}`).sort()).toEqual([
      'completeness:idNumber',
      'completeness:phone',
      'consistency:',
      'timeliness:',
      'uniqueness:phone',
      'validity:phone',
    ]);
  });
  it('thresholds: {} takes the defaults; a bad range or ratio is refused', () => {
    expect(QualityThresholds.parse({}).creditScore).toEqual({ min: 300, max: 850 });
    expect(QualityThresholds.safeParse({ creditScore: { min: 900, max: 300 } }).success).toBe(false);
    expect(QualityThresholds.safeParse({ maxInvalidRatio: 2 }).success).toBe(false);
    expect(QualityThresholds.safeParse({ staleAfter: 'P30D' }).data?.staleAfter).toBe(30 * 86_400_000);
  });
});

describe('renderQualityBreach', () => {
  it('names the report, the count and each breach in both locales', () => {
    const p = {
      checkId: 'c-1',
      subjectsChecked: 11,
      breaches: [{ check: 'validity' as const, field: 'phone', value: 1 / 9, threshold: 0.01 }],
    };
    expect(renderQualityBreach('en', p).text).toContain('- validity phone: 0.1111 / 0.01');
    expect(renderQualityBreach('zh-CN', p).subject).toBe('[数据质量] 1 项阈值未达标');
  });
});
