import { createHash } from 'node:crypto';

/** The console's one stylesheet, served at /console/console.css (the CSP allows `style-src 'self'` only). */
export const CONSOLE_CSS = `
*{box-sizing:border-box}
body{font-family:system-ui,"PingFang SC","Noto Sans CJK SC",sans-serif;line-height:1.5;margin:0;background:#f6f6f4;color:#1d1d1b}
a{color:#0b4f8a}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem}
header{background:#1d2b36;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;gap:1rem;align-items:center}
header a{color:#fff}
header nav ul{list-style:none;display:flex;gap:1rem;margin:0;padding:0}
header .who{margin-left:auto;display:flex;gap:.75rem;align-items:center}
header form{display:inline;margin:0}
main{max-width:64rem;margin:0 auto;padding:1rem 1.5rem}
section{background:#fff;border:1px solid #d8d8d2;border-radius:.5rem;padding:1rem;margin:0 0 1rem}
h1{font-size:1.6rem;margin:.5rem 0 1rem}h2{font-size:1.2rem;margin:0 0 .5rem}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e2e2dc;vertical-align:top}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}
dt{font-weight:600}dd{margin:0}
label{display:block;margin:.25rem 0}
input,select,textarea{font:inherit;padding:.4rem;border:1px solid #6b6b66;border-radius:.3rem;max-width:100%}
textarea{width:100%;min-height:4rem}
button{font:inherit;padding:.5rem 1rem;border-radius:.4rem;border:1px solid #1d2b36;background:#fff;color:#1d1d1b;cursor:pointer}
button.primary{background:#1d5c3a;border-color:#1d5c3a;color:#fff}
header button{background:transparent;color:#fff;border-color:#fff;padding:.2rem .6rem}
.filters{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-end}
.flash{border-left:4px solid #1d5c3a;background:#eef6f0;padding:.5rem 1rem;margin:0 0 1rem}
.problem{border-left:4px solid #a4262c;background:#fbeeee;padding:.5rem 1rem;margin:0 0 1rem}
.late{color:#a4262c;font-weight:600}
.mono{font-family:ui-monospace,monospace;word-break:break-all}
.lang{display:flex;gap:.5rem}
`.trim();

/** A strong validator for the stylesheet: it changes only with a release. */
export const CONSOLE_CSS_ETAG = `"${createHash('sha256').update(CONSOLE_CSS).digest('base64url').slice(0, 22)}"`;

/** Every console page: no script at all, the one stylesheet, forms to the console only. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "style-src 'self'",
  "img-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
].join('; ');
