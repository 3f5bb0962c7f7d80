import { createHash } from 'node:crypto';
import type { Child, FC } from 'hono/jsx';
import { COMPLAINT_CATEGORIES, REQUEST_TYPES, type RequestType } from '../../domain/request';

export type RequestPageLanguage = 'zh-CN' | 'en';

const STYLE = [
  'body{font-family:system-ui,sans-serif;line-height:1.5;margin:0;background:#f6f6f4;color:#1d1d1b}',
  'main{max-width:40rem;margin:0 auto;padding:1.5rem}',
  'section,fieldset{background:#fff;border:1px solid #d8d8d2;border-radius:.5rem;padding:1rem;margin:0 0 1rem}',
  'dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}',
  'dt{font-weight:600}dd{margin:0}',
  '.notice{white-space:pre-wrap}',
  'label{display:block;margin:.5rem 0}',
  'button{font-size:1rem;padding:.6rem 1.2rem;margin:.25rem .5rem .25rem 0;border-radius:.4rem;border:1px solid #555}',
  '.primary{background:#1d5c3a;color:#fff;border-color:#1d5c3a}',
  '.receipt{font-family:ui-monospace,monospace}',
].join('');

/** As the consent page: the one style allowed by its hash, no script, forms posted to the page itself. */
export const PAGE_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`,
  "form-action 'self'",
  "base-uri 'none'",
].join('; ');

export const TEXT = {
  en: {
    formTitle: 'Make a request about your personal information',
    type: 'What do you ask for?',
    types: {
      access: 'A copy of the personal information you hold about me',
      portability: 'My personal information in a machine-readable form',
      correction: 'Correct my personal information',
      erasure: 'Delete my personal information',
      restriction: 'Stop using my personal information for some purposes',
      objection: 'I dispute an entry in my credit record',
      complaint: 'A complaint',
    } satisfies Record<RequestType, string>,
    details: 'Details (what, which entries, why)',
    fields: 'Which entries (for a dispute or a correction), separated by commas',
    category: 'Complaint about',
    categories: {
      'credit-record': 'my credit record',
      'data-use': 'how my data is used',
      security: 'the security of my data',
      'request-handling': 'how a request was handled',
      marketing: 'marketing',
      other: 'something else',
    } satisfies Record<(typeof COMPLAINT_CATEGORIES)[number], string>,
    submit: 'Send the request',
    statusTitle: 'Your request',
    reference: 'Reference',
    received: 'Received',
    due: 'Answer due by',
    state: 'Status',
    states: {
      verifying: 'Waiting for you to confirm it is you (see the message we sent)',
      open: 'Being handled',
      paused: 'Waiting for information from you',
      fulfilled: 'Answered',
      refused: 'Refused',
      expired: 'Closed: your identity was not confirmed in time',
    } as Record<string, string>,
    answer: 'Answer',
    reasons: 'Reasons',
    extension: 'The time to answer was extended',
    complain:
      'You may complain to the data protection authority and bring the matter before a court (GDPR Art. 77-79; PIPL Art. 50).',
    statement: 'Your statement, kept with the record',
    verifyTitle: 'Confirm your request',
    verifyBody: 'Press the button to confirm that you made this request.',
    verifyButton: 'Yes, I made this request',
    verified: 'Thank you: your request is confirmed and is being handled.',
    invalid: 'This link is not valid.',
    expiredLink: 'This link has expired.',
    served: 'This copy was already downloaded, or its link has expired.',
    bad: 'The form could not be read: please check it and send it again.',
    notFound: 'Nothing was found for this link.',
    conflict: 'This request cannot be changed any more.',
  },
  'zh-CN': {
    formTitle: '提出关于您个人信息的请求',
    type: '您的请求',
    types: {
      access: '查阅、复制我的个人信息',
      portability: '以可机读格式获取我的个人信息',
      correction: '更正我的个人信息',
      erasure: '删除我的个人信息',
      restriction: '限制对我的个人信息的处理',
      objection: '对我的信用记录提出异议',
      complaint: '投诉',
    } satisfies Record<RequestType, string>,
    details: '具体说明（内容、涉及的记录、理由）',
    fields: '涉及的记录项（异议或更正时填写），以逗号分隔',
    category: '投诉事项',
    categories: {
      'credit-record': '信用记录',
      'data-use': '个人信息的使用',
      security: '个人信息的安全',
      'request-handling': '请求的处理',
      marketing: '营销',
      other: '其他',
    } satisfies Record<(typeof COMPLAINT_CATEGORIES)[number], string>,
    submit: '提交请求',
    statusTitle: '您的请求',
    reference: '编号',
    received: '收到时间',
    due: '答复期限',
    state: '状态',
    states: {
      verifying: '等待您确认身份（请查看我们发送的消息）',
      open: '处理中',
      paused: '等待您补充信息',
      fulfilled: '已答复',
      refused: '已拒绝',
      expired: '已关闭：未能及时确认您的身份',
    } as Record<string, string>,
    answer: '答复',
    reasons: '理由',
    extension: '答复期限已延长',
    complain:
      '您可以向履行个人信息保护职责的部门投诉、举报，也可以依法向人民法院提起诉讼（《个人信息保护法》第五十条）。',
    statement: '您的声明（与记录一并保存）',
    verifyTitle: '确认您的请求',
    verifyBody: '请点击下方按钮，确认该请求由您本人提出。',
    verifyButton: '是的，这是我提出的请求',
    verified: '谢谢：您的请求已确认，正在处理。',
    invalid: '该链接无效。',
    expiredLink: '该链接已过期。',
    served: '该副本已被下载，或链接已过期。',
    bad: '无法读取表单，请检查后重新提交。',
    notFound: '未找到与该链接对应的内容。',
    conflict: '该请求已无法更改。',
  },
};

const Layout: FC<{ lang: string; title: string; children?: Child }> = ({ lang, title, children }) => (
  <html lang={lang}>
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="robots" content="noindex, nofollow" />
      <title>{title}</title>
      <style dangerouslySetInnerHTML={{ __html: STYLE }} />
    </head>
    <body>
      <main>{children}</main>
    </body>
  </html>
);

export const FormPage: FC<{ lang: RequestPageLanguage; action: string; error?: boolean }> = ({
  lang,
  action,
  error,
}) => {
  const t = TEXT[lang];
  return (
    <Layout lang={lang} title={t.formTitle}>
      <h1>{t.formTitle}</h1>
      {error ? <p role="alert">{t.bad}</p> : null}
      <form method="post" action={action}>
        <fieldset>
          <legend>{t.type}</legend>
          {REQUEST_TYPES.map((type, i) => (
            <label>
              <input type="radio" name="type" value={type} required checked={i === 0} /> {t.types[type]}
            </label>
          ))}
        </fieldset>
        <section>
          <label>
            {t.details}
            <br />
            <textarea name="details" rows={6} cols={50} maxlength={20000}></textarea>
          </label>
          <label>
            {t.fields}
            <br />
            <input type="text" name="fields" maxlength={500} />
          </label>
          <label>
            {t.category}
            <br />
            <select name="category">
              {COMPLAINT_CATEGORIES.map((c) => (
                <option value={c}>{t.categories[c]}</option>
              ))}
            </select>
          </label>
        </section>
        <button type="submit" class="primary">
          {t.submit}
        </button>
      </form>
    </Layout>
  );
};

export interface RequestFacts {
  id: string;
  type: RequestType;
  status: string;
  receivedAt: Date;
  dueAt: Date;
  answer?: string | null;
  reasons?: string | null;
  extensionReason?: string | null;
  statement?: string | null;
}

export const StatusPage: FC<{ lang: RequestPageLanguage; f: RequestFacts; format: (d: Date) => string }> = ({
  lang,
  f,
  format,
}) => {
  const t = TEXT[lang];
  return (
    <Layout lang={lang} title={t.statusTitle}>
      <h1>{t.statusTitle}</h1>
      <section>
        <dl>
          <dt>{t.reference}</dt>
          <dd class="receipt" id="request-id">
            {f.id}
          </dd>
          <dt>{t.type}</dt>
          <dd>{t.types[f.type]}</dd>
          <dt>{t.received}</dt>
          <dd>{format(f.receivedAt)}</dd>
          <dt>{t.due}</dt>
          <dd>{format(f.dueAt)}</dd>
          <dt>{t.state}</dt>
          <dd id="request-status">{t.states[f.status] ?? f.status}</dd>
        </dl>
      </section>
      {f.extensionReason ? (
        <section>
          <h2>{t.extension}</h2>
          <p class="notice">{f.extensionReason}</p>
        </section>
      ) : null}
      {f.status === 'refused' ? (
        <section id="answer">
          <h2>{t.reasons}</h2>
          <p class="notice">{f.reasons}</p>
          <p>{t.complain}</p>
        </section>
      ) : null}
      {f.status === 'fulfilled' && f.answer ? (
        <section id="answer">
          <h2>{t.answer}</h2>
          <p class="notice">{f.answer}</p>
        </section>
      ) : null}
      {f.statement ? (
        <section>
          <h2>{t.statement}</h2>
          <p class="notice">{f.statement}</p>
        </section>
      ) : null}
    </Layout>
  );
};

export const VerifyPage: FC<{ lang: RequestPageLanguage; action?: string; done?: boolean }> = ({
  lang,
  action,
  done,
}) => {
  const t = TEXT[lang];
  return (
    <Layout lang={lang} title={t.verifyTitle}>
      <h1>{t.verifyTitle}</h1>
      {done ? (
        <p id="verified">{t.verified}</p>
      ) : (
        <form method="post" action={action}>
          <p>{t.verifyBody}</p>
          <button type="submit" class="primary">
            {t.verifyButton}
          </button>
        </form>
      )}
    </Layout>
  );
};

export type RequestPageProblem = 'invalid' | 'expiredLink' | 'served' | 'bad' | 'notFound' | 'conflict';

export const ProblemPage: FC<{ lang: RequestPageLanguage; problem: RequestPageProblem }> = ({ lang, problem }) => (
  <Layout lang={lang} title={TEXT[lang][problem]}>
    <p role="alert">{TEXT[lang][problem]}</p>
  </Layout>
);
