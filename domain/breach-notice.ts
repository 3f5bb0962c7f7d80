import { z } from 'zod';
import { CAMPAIGN_DEFAULTS } from './campaign';
import { NOTICE_LIMITS, NoticeHandler, type NoticeInput, type NoticeLocale } from './notice';

/**
 * The breach notice to the subjects an incident affected (PIPL Art. 57, GDPR Art. 34): what happened, its
 * likely consequences, the measures taken, what the subject can do, and whom to contact. Stored as a notice
 * (purpose `breach-notice`, immutable, SHA-256) and sent by a campaign over the incident's affected subjects.
 */
export const BREACH_NOTICE_PURPOSE = 'breach-notice';

const SECTION_MAX = 4_000;
const section = z.string().trim().min(1).max(SECTION_MAX);

export const BreachNoticeText = z
  .object({
    /** The nature of the incident and the kinds of personal information involved (PIPL 57(1), GDPR 34(2)). */
    whatHappened: section,
    /** The harm it may cause (PIPL 57(1), GDPR 33(3)(c)). */
    likelyConsequences: section,
    /** The remedial measures taken (PIPL 57(2), GDPR 33(3)(d)). */
    measuresTaken: section,
    /** What the subject can do to reduce the harm (PIPL 57(2)). */
    whatYouCanDo: section.optional(),
  })
  .strict();
export type BreachNoticeText = z.infer<typeof BreachNoticeText>;

export const SubjectNoticeRequest = z
  .object({
    texts: z.object({ 'zh-CN': BreachNoticeText, en: BreachNoticeText }).strict(),
    /** Whom the subjects contact (PIPL 57(3), GDPR 33(3)(b)): name and contact. */
    contact: NoticeHandler,
    /** Subjects per second; absent, as fast as the worker sends. */
    ratePerSecond: z.number().positive().max(100_000).optional(),
    batchSize: z.number().int().min(1).max(5_000).default(CAMPAIGN_DEFAULTS.batchSize),
  })
  .strict();
export type SubjectNoticeRequest = z.infer<typeof SubjectNoticeRequest>;

const HEADINGS: Record<NoticeLocale, { title: string } & Record<keyof BreachNoticeText, string>> = {
  en: {
    title: 'Notice of a personal information security incident',
    whatHappened: 'What happened',
    likelyConsequences: 'Likely consequences',
    measuresTaken: 'Measures we have taken',
    whatYouCanDo: 'What you can do',
  },
  'zh-CN': {
    title: '个人信息安全事件告知',
    whatHappened: '事件情况',
    likelyConsequences: '可能造成的危害',
    measuresTaken: '我们已采取的补救措施',
    whatYouCanDo: '您可以采取的减轻危害的措施',
  },
};

const SECTIONS = ['whatHappened', 'likelyConsequences', 'measuresTaken', 'whatYouCanDo'] as const;

/** One locale's notice text: a fixed title and the sections under their headings, in a fixed order. */
export const breachNoticeText = (locale: NoticeLocale, t: BreachNoticeText): { title: string; body: string } => {
  const h = HEADINGS[locale];
  const body = SECTIONS.filter((s) => t[s] !== undefined)
    .map((s) => `${h[s]}${locale === 'zh-CN' ? '：' : ':'}\n${t[s]}`)
    .join('\n\n');
  if (body.length > NOTICE_LIMITS.body) throw new RangeError('breach notice body too long');
  return { title: h.title, body };
};

/** The notice the request stores: the same shape every notice has, so the notifier and campaign reuse it. */
export const breachNotice = (r: SubjectNoticeRequest): NoticeInput => ({
  purpose: BREACH_NOTICE_PURPOSE,
  texts: { 'zh-CN': breachNoticeText('zh-CN', r.texts['zh-CN']), en: breachNoticeText('en', r.texts.en) },
  handler: r.contact,
});
