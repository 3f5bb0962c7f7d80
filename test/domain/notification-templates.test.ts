import { describe, expect, it } from 'vitest';
import {
  NOTIFICATION_TEMPLATES,
  notificationLocale,
  renderNotification,
  type NotificationParams,
} from '../../domain/notification-templates';

const params: NotificationParams = {
  title: 'Marketing notice',
  body: 'We will write to you about offers.',
  handler: { name: 'Example Retail Ltd', contact: 'privacy@retail.example' },
  previousHandler: { name: 'Old Retail Ltd' },
  link: 'https://consent.example/c/token',
};

describe('notification templates', () => {
  it('renders every template in zh-CN and en with the notice, the handler and the link', () => {
    for (const template of NOTIFICATION_TEMPLATES) {
      for (const locale of ['zh-CN', 'en'] as const) {
        const m = renderNotification(template, locale, params);
        expect(m.locale).toBe(locale);
        expect(m.text, `${template} ${locale}`).toContain(params.body);
        expect(m.text).toContain(params.handler.contact);
        expect(m.text).toContain(params.link);
        expect(`${m.subject}\n${m.text}`).toContain(params.handler.name);
        expect(/[\u4e00-\u9fff]/.test(m.subject + m.text), `${template} ${locale}`).toBe(locale === 'zh-CN');
      }
    }
  });

  it('chooses zh-CN for Chinese locale tags and falls back to en for anything else', () => {
    expect(['zh', 'zh-CN', 'zh-cn', 'zh-Hans', 'zh-Hans-CN', 'zh-SG'].map(notificationLocale)).toEqual(
      Array(6).fill('zh-CN'),
    );
    expect(['en', 'en-GB', 'fr', 'zh-TW', '', undefined, null].map(notificationLocale)).toEqual(Array(7).fill('en'));
    expect(renderNotification('consent-request', 'de-DE', params).locale).toBe('en');
  });

  it('asks for a reply when there is no link, and names only the new handler without a previous one', () => {
    const { link: _link, previousHandler: _previous, ...bare } = params;
    expect(renderNotification('consent-request', 'en', bare).text).toContain('Reply to this message to answer.');
    const transfer = renderNotification('transfer-notice', 'zh-CN', bare).text;
    expect(transfer.startsWith('您的个人信息将转移至Example Retail Ltd。')).toBe(true);
    expect(transfer).not.toContain('https://');
  });
});
