import { createHash } from 'node:crypto';

/** Renders /openapi.json in the browser with no external resource, so the page works offline. */
const script = `
const h = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
const el = (tag, cls, ...kids) => { const e = h(tag, undefined, cls); e.append(...kids); return e; };
let schemas = {};
const describe = (s, depth = 0, expand = true) => {
  if (!s || depth > 6) return 'any';
  if (s.$ref) { const name = s.$ref.split('/').pop(); return depth > 0 || !expand ? name : name + ' ' + describe(schemas[name], 0, false); }
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (s.anyOf || s.oneOf) return (s.anyOf || s.oneOf).map((x) => describe(x, depth + 1)).join(' | ');
  const type = Array.isArray(s.type) ? s.type.join(' | ') : s.type;
  if (type === 'array') return describe(s.items, depth + 1) + '[]';
  if (type === 'object' || s.properties) {
    const req = new Set(s.required || []);
    const props = Object.entries(s.properties || {}).map(([k, v]) => '  '.repeat(depth + 1) + k + (req.has(k) ? '' : '?') + ': ' + describe(v, depth + 1));
    return props.length ? '{\\n' + props.join('\\n') + '\\n' + '  '.repeat(depth) + '}' : 'object';
  }
  const limits = ['format', 'minimum', 'maximum', 'minLength', 'maxLength', 'pattern'].filter((k) => s[k] !== undefined).map((k) => k + '=' + s[k]);
  return (type || 'any') + (limits.length ? ' (' + limits.join(', ') + ')' : '');
};
// Problems share one schema, listed once at the end.
const content = (c) => Object.entries(c || {}).map(([type, m]) => el('div', '', h('code', type), h('pre', describe(m.schema, 0, !type.includes('problem')))));
fetch('openapi.json').then((r) => r.json()).then((doc) => {
  schemas = (doc.components && doc.components.schemas) || {};
  document.title = doc.info.title + ' ' + doc.info.version;
  const main = document.querySelector('main');
  main.replaceChildren(h('h1', doc.info.title + ' ' + doc.info.version), h('p', doc.info.description || ''));
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const roles = op['x-roles'] ? 'roles: ' + op['x-roles'].join(', ') : (op.security && op.security.length ? 'authenticated' : 'public');
      const section = el('section', 'op', el('h2', '', h('span', method.toUpperCase(), 'm ' + method), h('code', ' ' + path)), h('p', (op.summary || '') + ' — ' + roles));
      if (op.description) section.append(h('p', op.description));
      const params = op.parameters || [];
      if (params.length) {
        const table = el('table', '', el('tr', '', h('th', 'name'), h('th', 'in'), h('th', 'required'), h('th', 'schema')));
        for (const p of params) table.append(el('tr', '', h('td', p.name), h('td', p.in), h('td', p.required ? 'yes' : 'no'), h('td', describe(p.schema))));
        section.append(h('h3', 'Parameters'), table);
      }
      if (op.requestBody) section.append(h('h3', 'Request body'), ...content(op.requestBody.content));
      section.append(h('h3', 'Responses'));
      for (const [status, r] of Object.entries(op.responses || {})) section.append(el('div', 'resp', h('b', status + ' '), h('span', r.description || ''), ...content(r.content)));
      main.append(section);
    }
  }
  main.append(h('h2', 'Schemas'));
  for (const [name, schema] of Object.entries(schemas)) main.append(el('section', 'op', h('h3', name), h('pre', describe(schema))));
}).catch((e) => { document.querySelector('main').textContent = 'Could not load openapi.json: ' + e; });
`;

const style = `body{font:14px/1.5 system-ui,sans-serif;margin:0 auto;max-width:960px;padding:1rem;color:#222}
.op{border:1px solid #ddd;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}.m{font-weight:bold;padding:0 .4rem;border-radius:3px;color:#fff;background:#555}
.get{background:#2a7}.post{background:#27c}.patch,.put{background:#c82}.delete{background:#c33}
pre{background:#f6f6f6;padding:.5rem;overflow:auto;margin:.2rem 0}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}h2{font-size:1.1rem}h3{font-size:1rem;margin-bottom:.2rem}`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

export const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Custodian API</title><style>${style}</style></head>
<body><main><p>Loading the API reference…</p></main><script>${script}</script></body></html>`;

/** Only this page's own inline script and style, and fetches to this origin. */
export const DOCS_CSP = `default-src 'none'; script-src ${sha256(script)}; style-src ${sha256(style)}; connect-src 'self'`;
