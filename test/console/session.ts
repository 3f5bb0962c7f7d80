import { expect } from 'vitest';
import type { TestApp } from '../helpers/services';

/** A cookie jar for app.request: Set-Cookie in, Cookie out (an expired or emptied cookie leaves). */
export type Jar = Map<string, string>;
const cookieHeader = (jar: Jar) => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
const absorb = (jar: Jar, res: Response) => {
  for (const line of res.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const [name, value] = pair!.split('=') as [string, string];
    if (/max-age=0/i.test(line) || value === '') jar.delete(name);
    else jar.set(name, value);
  }
};
export const request = async (app: TestApp, jar: Jar, path: string, init: { form?: Record<string, string> } = {}) => {
  const res = await app.app.request(path, {
    method: init.form ? 'POST' : 'GET',
    headers: {
      cookie: cookieHeader(jar),
      ...(init.form && { 'content-type': 'application/x-www-form-urlencoded' }),
    },
    ...(init.form && { body: new URLSearchParams(init.form).toString() }),
  });
  absorb(jar, res);
  return res;
};
export const hidden = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];

/** Signs in with the key; returns the jar holding the session cookie and the session's CSRF token. */
export const signIn = async (app: TestApp, key: string) => {
  const jar: Jar = new Map();
  const form = await request(app, jar, '/console/sign-in');
  const pre = hidden(await form.text(), '_csrf')!;
  const res = await request(app, jar, '/console/sign-in', { form: { _csrf: pre, key, next: '/console' } });
  expect(res.status).toBe(303);
  const today = await request(app, jar, '/console');
  expect(today.status).toBe(200);
  return { jar, csrf: hidden(await today.text(), '_csrf')!, setCookie: res.headers.getSetCookie() };
};
