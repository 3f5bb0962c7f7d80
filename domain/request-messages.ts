import type { NotificationLocale } from './notification-templates';
import type { RequestType } from './request-clocks';

/**
 * The words of a request's messages. Staff (the assignee, the owners): reminders at 50/75/90 % and the overdue
 * escalation. The subject: one notice per kind (its text is the same for every request; the link carries the
 * request — the status page shows the answer, a refusal's reasons and how to complain). No personal value here.
 */

export type RequestStaffMark = `reminder-${number}` | 'overdue';

export interface RequestStaffParams {
  requestId: string;
  type: RequestType;
  mark: RequestStaffMark;
  percent: number;
  dueAt: string;
  source: string;
}

export const renderRequestStaffMessage = (locale: NotificationLocale, p: RequestStaffParams) => {
  const overdue = p.mark === 'overdue';
  return locale === 'zh-CN'
    ? {
        subject: overdue
          ? `已逾期：个人信息主体请求 ${p.requestId}（${p.type}）`
          : `提醒：个人信息主体请求 ${p.requestId}（${p.type}）时限已过 ${p.percent}%`,
        text: `请求 ${p.requestId}（${p.type}）应于 ${p.dueAt} 前答复（${p.source}）。${overdue ? '该请求已逾期，现通知负责人。' : ''}`,
      }
    : {
        subject: overdue
          ? `OVERDUE data-subject request ${p.requestId} (${p.type})`
          : `${p.percent}% of the time for data-subject request ${p.requestId} (${p.type}) has passed`,
        text: `Request ${p.requestId} (${p.type}) is due ${p.dueAt} (${p.source}).${overdue ? ' It is late: the owners are told.' : ''}`,
      };
};

export const SUBJECT_MESSAGE_KINDS = ['verify', 'extended', 'refused', 'answered', 'expired', 'export-ready'] as const;
export type SubjectMessageKind = (typeof SUBJECT_MESSAGE_KINDS)[number];

/** The notice purpose each kind's text is stored under (one notice per kind, versioned like any notice). */
export const subjectNoticePurpose = (kind: SubjectMessageKind) => `data-subject-request-${kind}`;

export const SUBJECT_NOTICE_TEXTS: Record<
  SubjectMessageKind,
  Record<NotificationLocale, { title: string; body: string }>
> = {
  verify: {
    en: {
      title: 'Confirm your request',
      body: 'We received a request about your personal information. To confirm that you made it, open the link below.',
    },
    'zh-CN': {
      title: '请确认您的请求',
      body: '我们收到了一项关于您个人信息的请求。请打开下方链接，确认该请求由您本人提出。',
    },
  },
  extended: {
    en: {
      title: 'We need more time for your request',
      body: 'The time to answer your request was extended (GDPR Art. 12(3)). The reasons and the new date are on the page below.',
    },
    'zh-CN': { title: '您的请求需要更多处理时间', body: '您的请求的答复期限已延长。延期原因和新的期限见下方页面。' },
  },
  refused: {
    en: {
      title: 'Your request was refused',
      body:
        'Your request was refused. The reasons are on the page below. You may complain to the data protection ' +
        'authority and bring the matter before a court.',
    },
    'zh-CN': {
      title: '您的请求被拒绝',
      body: '您的请求被拒绝，拒绝理由见下方页面。您可以向履行个人信息保护职责的部门投诉、举报，也可以依法向人民法院提起诉讼（《个人信息保护法》第五十条）。',
    },
  },
  answered: {
    en: { title: 'Your request was answered', body: 'Your request was answered. The answer is on the page below.' },
    'zh-CN': { title: '您的请求已答复', body: '您的请求已处理完毕，答复见下方页面。' },
  },
  expired: {
    en: {
      title: 'Your request was closed',
      body: 'Your request was closed because your identity could not be confirmed in time. You may file it again.',
    },
    'zh-CN': { title: '您的请求已关闭', body: '由于未能及时确认您的身份，您的请求已关闭。您可以重新提交。' },
  },
  'export-ready': {
    en: {
      title: 'A copy of your personal information',
      body: 'The copy of your personal information you asked for can be downloaded once, before the link expires.',
    },
    'zh-CN': { title: '您的个人信息副本', body: '您请求的个人信息副本可通过下方链接下载一次，链接到期后失效。' },
  },
};
