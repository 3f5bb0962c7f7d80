import type { Child, FC } from 'hono/jsx';
import type { Role } from '../../domain/roles';
import { can } from './capabilities';
import { DESTRUCTION_TEXT } from './destruction-text';
import { OBLIGATION_TEXT } from './obligation-text';
import { REQUEST_TEXT } from './request-text';
import type { ConsoleLanguage, ConsoleText } from './text';

/** What every page knows of the request: language, texts, the signed-in user (if any), where it is. */
export interface View {
  lang: ConsoleLanguage;
  t: ConsoleText;
  /** The page's own path (for the language switch). */
  path: string;
  /** `incidentId`: signed in by a page's link, for that incident only. */
  user?: { userId: string; role: Role; csrf: string; incidentId?: string };
}

/** The session's synchronizer token: every form that POSTs carries it. */
export const Csrf: FC<{ v: View }> = ({ v }) =>
  v.user ? <input type="hidden" name="_csrf" value={v.user.csrf} /> : null;

export const Flash: FC<{ text?: string | undefined }> = ({ text }) =>
  text ? (
    <p class="flash" role="status">
      {text}
    </p>
  ) : null;

export const Problem: FC<{ text?: string | undefined }> = ({ text }) =>
  text ? (
    <p class="problem" role="alert">
      {text}
    </p>
  ) : null;

const Nav: FC<{ v: View }> = ({ v }) => {
  const role = v.user?.role;
  if (!role) return null;
  const items: [string, string, boolean][] = [
    ['/console', v.t.nav.today, true],
    ['/console/audit', v.t.nav.audit, can(role, 'viewAudit')],
    ['/console/backups', v.t.nav.backups, can(role, 'viewBackups')],
    ['/console/schedules', v.t.nav.schedules, can(role, 'viewSchedules')],
    ['/console/obligations', OBLIGATION_TEXT[v.lang].nav, can(role, 'viewObligations')],
    ['/console/subjects', v.t.nav.subjects, can(role, 'findSubjects')],
    ['/console/destructions', DESTRUCTION_TEXT[v.lang].nav, can(role, 'viewDestruction')],
    ['/console/requests', REQUEST_TEXT[v.lang].nav, can(role, 'listRequests')],
  ];
  // A page-link session reaches its incident only.
  const scope = v.user?.incidentId;
  const links: [string, string, boolean][] = scope
    ? [[`/console/incidents/${scope}`, v.t.incident.title, true]]
    : items;
  return (
    <nav aria-label="Console">
      <ul>
        {links
          .filter(([, , shown]) => shown)
          .map(([href, label]) => (
            <li>
              <a href={href} aria-current={v.path === href ? 'page' : undefined}>
                {label}
              </a>
            </li>
          ))}
      </ul>
    </nav>
  );
};

/** The page around every console view: header, navigation by role, sign-out, language switch. */
export const Layout: FC<{ v: View; title: string; children?: Child }> = ({ v, title, children }) => (
  <html lang={v.lang}>
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="robots" content="noindex, nofollow" />
      <title>{`${title} · ${v.t.product}`}</title>
      <link rel="stylesheet" href="/console/console.css" />
    </head>
    <body>
      <a class="skip" href="#main">
        {v.t.skip}
      </a>
      <header>
        <strong>{v.t.product}</strong>
        <Nav v={v} />
        <div class="who">
          <span class="lang" aria-label={v.t.language}>
            <a href={`${v.path}?lang=en`} lang="en" hreflang="en">
              English
            </a>
            <a href={`${v.path}?lang=zh-CN`} lang="zh-CN" hreflang="zh-CN">
              中文
            </a>
          </span>
          {v.user ? (
            <>
              <span>{v.t.signedInAs(v.user.role)}</span>
              <form method="post" action="/console/sign-out">
                <Csrf v={v} />
                <button type="submit">{v.t.signOut}</button>
              </form>
            </>
          ) : null}
        </div>
      </header>
      <main id="main">
        <h1>{title}</h1>
        {children}
      </main>
    </body>
  </html>
);
