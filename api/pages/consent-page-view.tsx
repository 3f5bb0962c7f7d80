import { createHash } from 'node:crypto';
import type { Child, FC } from 'hono/jsx';
import type { ConsentStatus, SensitiveDecision } from '../../domain/consent';
import type { Notice } from '../../domain/notice';
import { PAGE_TEXT, STATE_NAMES, type PageLanguage, type PageProblem, type PageText } from './consent-page-text';

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

/** The page's only style, allowed by its hash: the CSP needs no 'unsafe-inline' and no nonce. */
export const PAGE_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`,
  "form-action 'self'",
  "base-uri 'none'",
].join('; ');

/** Dates in the subject's language, in China time for a Chinese subject and UTC otherwise. */
export const dateFormat = (lang: PageLanguage, jurisdiction: string | undefined) => {
  const format = new Intl.DateTimeFormat(lang, {
    dateStyle: 'long',
    timeStyle: 'long',
    timeZone: jurisdiction?.startsWith('CN') ? 'Asia/Shanghai' : 'UTC',
  });
  return (d: Date) => format.format(d);
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

/** What the page shows of a consent: the row's facts, the notice, and the subject's language. */
export interface ConsentFacts {
  lang: PageLanguage;
  format: (d: Date) => string;
  notice: Notice;
  status: ConsentStatus;
  respondBy: Date;
  decidedAt: Date | null;
  validUntil: Date | null;
  sensitiveCategories: string[];
  sensitiveDecision: SensitiveDecision | null;
  receiptId?: string;
}

const categoryNames = (t: PageText, names: string[], lang: PageLanguage) =>
  names.map((n) => t.categories[n] ?? n).join(lang === 'zh-CN' ? '、' : ', ');

const NoticeSection: FC<{ t: PageText; f: ConsentFacts }> = ({ t, f }) => {
  const text = f.notice.texts[f.lang];
  return (
    <section>
      <h1>{text.title}</h1>
      <dl>
        <dt>{t.handler}</dt>
        <dd>{f.notice.handler.name}</dd>
        <dt>{t.contact}</dt>
        <dd>{f.notice.handler.contact}</dd>
        {f.notice.handler.address ? (
          <>
            <dt>{t.address}</dt>
            <dd>{f.notice.handler.address}</dd>
          </>
        ) : null}
        {f.notice.previousHandler ? (
          <>
            <dt>{t.previousHandler}</dt>
            <dd>{f.notice.previousHandler.name}</dd>
          </>
        ) : null}
        <dt>{t.purpose}</dt>
        <dd>{f.notice.purpose}</dd>
      </dl>
      <p class="notice">{text.body}</p>
      <p>
        <small>{t.noticeVersion(f.notice.version)}</small>
      </p>
    </section>
  );
};

/** Grant and Deny; with sensitive data, a required separate choice that Deny skips (formnovalidate). */
const DecisionForm: FC<{ t: PageText; f: ConsentFacts }> = ({ t, f }) => (
  <form method="post">
    {f.sensitiveCategories.length ? (
      <fieldset>
        <legend>{t.sensitiveLegend}</legend>
        <p>{t.sensitiveExplain(categoryNames(t, f.sensitiveCategories, f.lang))}</p>
        <label>
          <input type="radio" name="sensitive" value="yes" required /> {t.sensitiveYes}
        </label>
        <label>
          <input type="radio" name="sensitive" value="no" required /> {t.sensitiveNo}
        </label>
      </fieldset>
    ) : null}
    <p>{t.respondBy(f.format(f.respondBy))}</p>
    <button type="submit" name="action" value="grant" class="primary">
      {t.grant}
    </button>
    <button type="submit" name="action" value="deny" formnovalidate>
      {t.deny}
    </button>
  </form>
);

const StatusSection: FC<{ t: PageText; f: ConsentFacts; headline?: string }> = ({ t, f, headline }) => (
  <section role="status">
    <h2>{headline ?? t.status[f.status]}</h2>
    {f.decidedAt && f.status !== 'requested' ? <p>{t.decidedAt(f.format(f.decidedAt))}</p> : null}
    {f.status === 'granted' && f.validUntil ? <p>{t.validUntil(f.format(f.validUntil))}</p> : null}
    {f.sensitiveDecision ? <p>{t.sensitiveStatus[f.sensitiveDecision]}</p> : null}
    {f.receiptId && f.status !== 'withdrawn' ? (
      <p>
        {t.receiptId}:{' '}
        <span class="receipt" id="receipt-id">
          {f.receiptId}
        </span>
      </p>
    ) : null}
    {f.status === 'granted' ? (
      <form method="post">
        <p>{t.withdrawHint}</p>
        <button type="submit" name="action" value="withdraw">
          {t.withdraw}
        </button>
      </form>
    ) : null}
  </section>
);

/** The page a link opens: the notice, then the question or the answer given (with Withdraw while granted). */
export const ConsentPage: FC<{ f: ConsentFacts }> = ({ f }) => {
  const t = PAGE_TEXT[f.lang];
  return (
    <Layout lang={f.lang} title={t.pageTitle}>
      <NoticeSection t={t} f={f} />
      {f.status === 'requested' ? <DecisionForm t={t} f={f} /> : <StatusSection t={t} f={f} />}
    </Layout>
  );
};

/** The answer just recorded, with its receipt ID (and Withdraw, for a grant). */
export const RecordedPage: FC<{ f: ConsentFacts; recorded: 'granted' | 'denied' | 'withdrawn' }> = ({
  f,
  recorded,
}) => {
  const t = PAGE_TEXT[f.lang];
  return (
    <Layout lang={f.lang} title={t.pageTitle}>
      <StatusSection t={t} f={f} headline={t.recorded[recorded]} />
    </Layout>
  );
};

/** A refused answer: the consent's state, nothing changed. */
export const ConflictPage: FC<{ lang: PageLanguage; state: string }> = ({ lang, state }) => {
  const t = PAGE_TEXT[lang];
  return (
    <Layout lang={lang} title={t.conflict.title}>
      <section role="alert">
        <h1>{t.conflict.title}</h1>
        <p>{t.conflict.body(STATE_NAMES[lang][state] ?? state)}</p>
        <p>
          <a href="">{t.back}</a>
        </p>
      </section>
    </Layout>
  );
};

/** A page that cannot show the consent; in both languages when the subject (and so the language) is unknown. */
export const ProblemPage: FC<{ problem: PageProblem; lang?: PageLanguage }> = ({ problem, lang }) => {
  const langs: PageLanguage[] = lang ? [lang] : ['zh-CN', 'en'];
  return (
    <Layout lang={langs[0]!} title={PAGE_TEXT[langs[0]!].problems[problem].title}>
      {langs.map((l) => (
        <section role="alert" lang={l}>
          <h1>{PAGE_TEXT[l].problems[problem].title}</h1>
          <p>{PAGE_TEXT[l].problems[problem].body}</p>
          {problem === 'bad-form' ? (
            <p>
              <a href="">{PAGE_TEXT[l].back}</a>
            </p>
          ) : null}
        </section>
      ))}
    </Layout>
  );
};
