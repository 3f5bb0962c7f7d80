import type { ConsentStatus, SensitiveDecision } from '../../domain/consent';
import type { NotificationLocale } from '../../domain/notification-templates';

export type PageLanguage = NotificationLocale;

/** Why the page cannot show a consent: each has its own status and words. */
export type PageProblem = 'invalid' | 'expired' | 'superseded' | 'not-found' | 'bad-form' | 'internal';

export const PROBLEM_STATUS = {
  invalid: 403,
  expired: 410,
  superseded: 410,
  'not-found': 404,
  'bad-form': 400,
  internal: 500,
} as const satisfies Record<PageProblem, number>;

export interface PageText {
  pageTitle: string;
  handler: string;
  contact: string;
  address: string;
  previousHandler: string;
  purpose: string;
  noticeVersion: (v: number) => string;
  respondBy: (when: string) => string;
  sensitiveLegend: string;
  sensitiveExplain: (categories: string) => string;
  sensitiveYes: string;
  sensitiveNo: string;
  grant: string;
  deny: string;
  withdraw: string;
  withdrawHint: string;
  status: Record<ConsentStatus, string>;
  decidedAt: (when: string) => string;
  validUntil: (when: string) => string;
  sensitiveStatus: Record<SensitiveDecision, string>;
  receiptId: string;
  recorded: Record<'granted' | 'denied' | 'withdrawn', string>;
  back: string;
  conflict: { title: string; body: (state: string) => string };
  problems: Record<PageProblem, { title: string; body: string }>;
  categories: Record<string, string>;
}

const en: PageText = {
  pageTitle: 'Your consent',
  handler: 'Who is asking',
  contact: 'Contact',
  address: 'Address',
  previousHandler: 'Your data was transferred from',
  purpose: 'Purpose',
  noticeVersion: (v) => `Notice version ${v}`,
  respondBy: (when) => `Please answer by ${when}.`,
  sensitiveLegend: 'Sensitive personal information: a separate answer',
  sensitiveExplain: (categories) =>
    `This purpose also uses sensitive personal information (${categories}). Processing it needs your separate consent. Choose one before you grant:`,
  sensitiveYes: 'I consent to the processing of my sensitive personal information for this purpose',
  sensitiveNo: 'I do not consent to the processing of my sensitive personal information',
  grant: 'Grant consent',
  deny: 'Deny',
  withdraw: 'Withdraw consent',
  withdrawHint: 'You can withdraw your consent on this page at any time; processing for this purpose then stops.',
  status: {
    requested: 'Your answer is requested.',
    granted: 'You granted this consent.',
    denied: 'You refused this consent.',
    expired: 'This request expired without an answer.',
    withdrawn: 'You withdrew this consent.',
  },
  decidedAt: (when) => `Answered on ${when}.`,
  validUntil: (when) => `Valid until ${when}.`,
  sensitiveStatus: {
    granted: 'Sensitive personal information: you consented.',
    refused: 'Sensitive personal information: you did not consent.',
  },
  receiptId: 'Receipt ID',
  recorded: {
    granted: 'Thank you: your consent is recorded.',
    denied: 'Thank you: your refusal is recorded.',
    withdrawn: 'Your consent is withdrawn.',
  },
  back: 'Back to your consent',
  conflict: {
    title: 'Nothing was changed',
    body: (state) => `This consent is ${state}, so this answer cannot be recorded.`,
  },
  problems: {
    invalid: {
      title: 'This link is not valid',
      body: 'The link is incomplete or has been altered. Open it again from your message, or contact the sender.',
    },
    expired: {
      title: 'This link has expired',
      body: 'The time to answer this request has passed. Contact the sender if you want to give or refuse consent.',
    },
    superseded: {
      title: 'This link has been replaced',
      body: 'A newer request was sent to you. Please use the link in the newest message.',
    },
    'not-found': {
      title: 'Request not found',
      body: 'This request is not available. Please try again later or contact the sender.',
    },
    'bad-form': {
      title: 'Your answer could not be read',
      body: 'Please go back and choose an answer. Where sensitive personal information is asked about, choose one of its two options before you grant.',
    },
    internal: {
      title: 'Something went wrong',
      body: 'Your answer may not have been recorded. Please try again in a few minutes.',
    },
  },
  categories: {
    idNumber: 'ID number',
    bankAccount: 'bank account',
    creditScore: 'credit score',
    creditHistory: 'credit history',
    loanBalance: 'loan balance',
  },
};

const zh: PageText = {
  pageTitle: '您的同意',
  handler: '个人信息处理者',
  contact: '联系方式',
  address: '地址',
  previousHandler: '您的个人信息转移自',
  purpose: '处理目的',
  noticeVersion: (v) => `告知版本 ${v}`,
  respondBy: (when) => `请在 ${when} 之前答复。`,
  sensitiveLegend: '敏感个人信息：单独同意',
  sensitiveExplain: (categories) =>
    `该目的还将处理您的敏感个人信息（${categories}），需要取得您的单独同意。同意前请选择一项：`,
  sensitiveYes: '我同意为此目的处理我的敏感个人信息',
  sensitiveNo: '我不同意处理我的敏感个人信息',
  grant: '同意',
  deny: '拒绝',
  withdraw: '撤回同意',
  withdrawHint: '您可以随时在本页面撤回同意；撤回后将停止为此目的处理您的个人信息。',
  status: {
    requested: '请您作出答复。',
    granted: '您已同意。',
    denied: '您已拒绝。',
    expired: '该请求已过期，未收到答复。',
    withdrawn: '您已撤回同意。',
  },
  decidedAt: (when) => `答复时间：${when}。`,
  validUntil: (when) => `有效期至 ${when}。`,
  sensitiveStatus: {
    granted: '敏感个人信息：您已单独同意。',
    refused: '敏感个人信息：您未同意。',
  },
  receiptId: '回执编号',
  recorded: {
    granted: '谢谢，您的同意已记录。',
    denied: '谢谢，您的拒绝已记录。',
    withdrawn: '您的同意已撤回。',
  },
  back: '返回',
  conflict: {
    title: '未作任何更改',
    body: (state) => `该同意的状态为“${state}”，无法记录此答复。`,
  },
  problems: {
    invalid: {
      title: '链接无效',
      body: '该链接不完整或已被修改。请从您收到的消息中重新打开，或联系发送方。',
    },
    expired: {
      title: '链接已过期',
      body: '答复期限已过。如需同意或拒绝，请联系发送方。',
    },
    superseded: {
      title: '链接已被替换',
      body: '我们已向您发送了新的请求，请使用最新消息中的链接。',
    },
    'not-found': {
      title: '未找到该请求',
      body: '该请求暂不可用，请稍后再试或联系发送方。',
    },
    'bad-form': {
      title: '无法读取您的答复',
      body: '请返回并选择答复。涉及敏感个人信息时，请在同意前选择其中一项。',
    },
    internal: {
      title: '出现错误',
      body: '您的答复可能未被记录，请几分钟后重试。',
    },
  },
  categories: {
    idNumber: '身份证号码',
    bankAccount: '银行账户',
    creditScore: '信用评分',
    creditHistory: '信用记录',
    loanBalance: '贷款余额',
  },
};

/** The state names a conflict page quotes. */
export const STATE_NAMES: Record<PageLanguage, Record<string, string>> = {
  en: {
    requested: 'awaiting an answer',
    granted: 'already granted',
    denied: 'already refused',
    expired: 'expired',
    withdrawn: 'withdrawn',
    'not-granted': 'not granted',
  },
  'zh-CN': {
    requested: '待答复',
    granted: '已同意',
    denied: '已拒绝',
    expired: '已过期',
    withdrawn: '已撤回',
    'not-granted': '未同意',
  },
};

export const PAGE_TEXT: Record<PageLanguage, PageText> = { en, 'zh-CN': zh };
