import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Hono } from 'hono';

/**
 * The API reference at /docs: Swagger UI from the `swagger-ui-dist` npm package, served by this process (no CDN, so
 * it works offline), over /openapi.json. No inline script: the page loads the bundle and its own init script
 * (/docs/init.js) from this origin. "Try it out" sends the bearer key entered under Authorize.
 */
const dist = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** Swagger UI's start-up, its own file so the CSP needs no 'unsafe-inline' script. The validator is off (offline). */
export const DOCS_INIT = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
    validatorUrl: null,
    persistAuthorization: false,
    tryItOutEnabled: false,
    displayRequestDuration: true,
  });
});
`;

export const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Custodian API reference</title><link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><main id="swagger-ui"><noscript>The API reference needs JavaScript; the document itself is <a href="/openapi.json">/openapi.json</a>.</noscript></main>
<script src="/docs/swagger-ui-bundle.js"></script><script src="/docs/init.js"></script></body></html>`;

/**
 * Scripts and styles from this origin only; Swagger UI sets style attributes (style-src-attr) and draws icons from
 * data: URIs; requests ("try it") go to this origin.
 */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "style-src-attr 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
].join('; ');

const ASSETS: Record<string, { type: string; body: Buffer | string }> = {
  'swagger-ui.css': { type: 'text/css; charset=utf-8', body: readFileSync(join(dist, 'swagger-ui.css')) },
  'swagger-ui-bundle.js': {
    type: 'text/javascript; charset=utf-8',
    body: readFileSync(join(dist, 'swagger-ui-bundle.js')),
  },
  'init.js': { type: 'text/javascript; charset=utf-8', body: DOCS_INIT },
};

/** /docs and its assets, mounted at /docs. */
export const docsPage = () => {
  const app = new Hono();
  app.get('/', (c) => c.html(DOCS_HTML, 200, { 'content-security-policy': DOCS_CSP }));
  app.get('/:file', (c) => {
    const asset = ASSETS[c.req.param('file')];
    if (!asset) return c.notFound();
    // The assets change only with the package version: cacheable, unlike every API response.
    return c.body(asset.body as never, 200, {
      'content-type': asset.type,
      'cache-control': 'public, max-age=86400',
    });
  });
  return app;
};
