/**
 * The notifier's messages, per template and locale. Pure: the activity passes what it read (the notice's
 * text in the subject's locale, the handler, the consent link) and gets a subject line and a plain-text body.
 */
export const NOTIFICATION_TEMPLATES = [
  'consent-request',
  'consent-reminder',
  'transfer-notice',
  'breach-notice',
  'request-update',
] as const;
export type NotificationTemplate = (typeof NOTIFICATION_TEMPLATES)[number];

export const NOTIFICATION_LOCALES = ['zh-CN', 'en'] as const;
export type NotificationLocale = (typeof NOTIFICATION_LOCALES)[number];

export interface NotificationParams {
  /** The notice's title and body in the chosen locale. */
  title: string;
  body: string;
  handler: { name: string; contact: string };
  /** For a transfer: who held the data before. */
  previousHandler?: { name: string };
  /** The signed consent link, when the message asks for an answer. */
  link?: string;
}

export interface RenderedNotification {
  subject: string;
  text: string;
}

/** `zh-CN` for Chinese locales (`zh`, `zh-CN`, `zh-Hans…`), `en` for everything else, unknown included. */
export const notificationLocale = (locale: string | null | undefined): NotificationLocale => {
  const tag = (locale ?? '').trim().toLowerCase();
  if (tag === 'zh' || tag === 'zh-cn' || tag.startsWith('zh-hans') || tag === 'zh-sg') return 'zh-CN';
  return 'en';
};

type Render = (p: NotificationParams) => RenderedNotification;

const lines = (...parts: (string | false | undefined)[]) =>
  parts.filter((p): p is string => typeof p === 'string').join('\n');

/** A consent request or reminder: the opening line differs, the notice, link and contact are the same. */
const consentMessage: Record<
  NotificationLocale,
  (p: NotificationParams, subject: string, opening: string) => RenderedNotification
> = {
  en: (p, subject, opening) => ({
    subject,
    text: lines(
      opening,
      '',
      p.title,
      '',
      p.body,
      '',
      p.link ? `Answer here: ${p.link}` : 'Reply to this message to answer.',
      '',
      `Questions: ${p.handler.contact}`,
    ),
  }),
  'zh-CN': (p, subject, opening) => ({
    subject,
    text: lines(
      opening,
      '',
      p.title,
      '',
      p.body,
      '',
      p.link ? `请在此处答复：${p.link}` : '请回复本消息作答。',
      '',
      `如有疑问，请联系：${p.handler.contact}`,
    ),
  }),
};

const TEMPLATES: Record<NotificationTemplate, Record<NotificationLocale, Render>> = {
  'consent-request': {
    en: (p) =>
      consentMessage.en(p, `Your consent is requested: ${p.title}`, `${p.handler.name} asks for your consent.`),
    'zh-CN': (p) => consentMessage['zh-CN'](p, `请求您的同意：${p.title}`, `${p.handler.name}请求您的同意。`),
  },
  'consent-reminder': {
    en: (p) =>
      consentMessage.en(
        p,
        `Reminder: your consent is requested: ${p.title}`,
        `This is a reminder: ${p.handler.name} is still waiting for your answer.`,
      ),
    'zh-CN': (p) =>
      consentMessage['zh-CN'](p, `提醒：请求您的同意：${p.title}`, `温馨提醒：${p.handler.name}仍在等待您的答复。`),
  },
  'transfer-notice': {
    en: (p) => ({
      subject: `Notice: your personal information is transferred to ${p.handler.name}`,
      text: lines(
        p.previousHandler
          ? `Your personal information held by ${p.previousHandler.name} is transferred to ${p.handler.name}.`
          : `Your personal information is transferred to ${p.handler.name}.`,
        '',
        p.title,
        '',
        p.body,
        '',
        p.link && `Object or answer here: ${p.link}`,
        p.link && '',
        `Contact the new handler: ${p.handler.contact}`,
      ),
    }),
    'zh-CN': (p) => ({
      subject: `告知：您的个人信息将转移至${p.handler.name}`,
      text: lines(
        p.previousHandler
          ? `由${p.previousHandler.name}处理的您的个人信息将转移至${p.handler.name}。`
          : `您的个人信息将转移至${p.handler.name}。`,
        '',
        p.title,
        '',
        p.body,
        '',
        p.link && `如有异议或需答复，请访问：${p.link}`,
        p.link && '',
        `新的个人信息处理者联系方式：${p.handler.contact}`,
      ),
    }),
  },
  /** PIPL Art. 57, GDPR Art. 34: the notice's sections (what happened, consequences, measures) and the contact. */
  'breach-notice': {
    en: (p) => ({
      subject: `${p.title}: ${p.handler.name}`,
      text: lines(
        `${p.handler.name} informs you of a security incident that affects your personal information.`,
        '',
        p.title,
        '',
        p.body,
        '',
        p.link && `More information: ${p.link}`,
        p.link && '',
        `Contact: ${p.handler.name}, ${p.handler.contact}`,
      ),
    }),
    'zh-CN': (p) => ({
      subject: `${p.title}：${p.handler.name}`,
      text: lines(
        `${p.handler.name}现告知您：发生了一起涉及您个人信息的安全事件。`,
        '',
        p.title,
        '',
        p.body,
        '',
        p.link && `详情请访问：${p.link}`,
        p.link && '',
        `联系方式：${p.handler.name}，${p.handler.contact}`,
      ),
    }),
  },
  /** A data-subject request's step (verify, extended, refused, answered …): the notice's text and the request's link. */
  'request-update': {
    en: (p) => ({
      subject: p.title,
      text: lines(p.body, '', p.link && p.link, p.link && '', `Contact: ${p.handler.name}, ${p.handler.contact}`),
    }),
    'zh-CN': (p) => ({
      subject: p.title,
      text: lines(p.body, '', p.link && p.link, p.link && '', `联系方式：${p.handler.name}，${p.handler.contact}`),
    }),
  },
};

/** A message in the given locale; an unknown locale falls back to `en`. */
export const renderNotification = (
  template: NotificationTemplate,
  locale: string,
  params: NotificationParams,
): RenderedNotification & { locale: NotificationLocale } => {
  const chosen = notificationLocale(locale);
  return { ...TEMPLATES[template][chosen](params), locale: chosen };
};
