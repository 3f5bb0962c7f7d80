import { describe, expect, it } from 'vitest';
import { breachNotice, SubjectNoticeRequest } from '../../domain/breach-notice';
import { campaignTemplate } from '../../domain/campaign';
import { renderNotification } from '../../domain/notification-templates';

const text = (lang: string) => ({
  whatHappened: `${lang} happened`,
  likelyConsequences: `${lang} consequences`,
  measuresTaken: `${lang} measures`,
});
const request = SubjectNoticeRequest.parse({
  texts: { 'zh-CN': text('zh'), en: { ...text('en'), whatYouCanDo: 'en advice' } },
  contact: { name: 'Example Credit Ltd', contact: 'privacy@example.com' },
});

describe('breach notice', () => {
  it('puts the sections under fixed headings in order, per locale, with the contact as the handler', () => {
    const n = breachNotice(request);
    expect(n.purpose).toBe('breach-notice');
    expect(n.handler).toEqual({ name: 'Example Credit Ltd', contact: 'privacy@example.com' });
    expect(n.texts.en.body).toBe(
      'What happened:\nen happened\n\nLikely consequences:\nen consequences\n\n' +
        'Measures we have taken:\nen measures\n\nWhat you can do:\nen advice',
    );
    expect(n.texts['zh-CN']).toEqual({
      title: '个人信息安全事件告知',
      body: '事件情况：\nzh happened\n\n可能造成的危害：\nzh consequences\n\n我们已采取的补救措施：\nzh measures',
    });
  });

  it('renders the breach-notice template in the subject’s language with the contact', () => {
    const n = breachNotice(request);
    const zh = renderNotification('breach-notice', 'zh-CN', { ...n.texts['zh-CN'], handler: n.handler });
    expect(zh.locale).toBe('zh-CN');
    expect(zh.subject).toBe('个人信息安全事件告知：Example Credit Ltd');
    expect(zh.text).toContain('zh measures');
    expect(zh.text).toContain('联系方式：Example Credit Ltd，privacy@example.com');
    const en = renderNotification('breach-notice', 'en-GB', { ...n.texts.en, handler: n.handler });
    expect(en.text).toContain('informs you of a security incident');
    expect(en.text).toContain('Contact: Example Credit Ltd, privacy@example.com');
  });

  it('chooses the template by the campaign’s scope', () => {
    expect(campaignTemplate({ incidentId: '7d2c1f9e-3a4b-4c5d-8e6f-0a1b2c3d4e5f' })).toBe('breach-notice');
    expect(campaignTemplate({ jurisdiction: 'CN' })).toBe('transfer-notice');
  });

  it('names a missing or unknown field', () => {
    const bad = SubjectNoticeRequest.safeParse({
      texts: { 'zh-CN': text('zh'), en: { whatHappened: 'x', likelyConsequences: 'y' } },
      contact: { name: 'n', contact: 'c' },
      filter: {},
    });
    expect(bad.success).toBe(false);
    const paths = bad.error!.issues.map((i) => [...i.path, ...('keys' in i ? i.keys : [])].join('.'));
    expect(paths).toEqual(expect.arrayContaining(['texts.en.measuresTaken', 'filter']));
  });
});
