import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/**
 * The plumbing of the browser tests: a real headless Chromium (Debian's `chromium`, driven by playwright-core),
 * axe-core for accessibility, and the README tour's screenshots. Without a browser a browser test file is skipped
 * locally and fails in CI (`describe.skipIf(skipWithoutChromium('…'))` and `launchChromium()` in `beforeAll`).
 */
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
export const IN_CI = Boolean(process.env.CI) && process.env.CI !== 'false';

/** True where the file should be skipped (no browser, not in CI), with a warning naming what was skipped. */
export const skipWithoutChromium = (what: string): boolean => {
  const skip = !HAVE_CHROMIUM && !IN_CI;
  if (skip) console.warn(`${what} SKIPPED: no chromium at ${CHROMIUM} (apt-get install chromium)`);
  return skip;
};

/** Launches the headless browser; in CI without one it throws, so the run fails rather than passing untested. */
export const launchChromium = async (): Promise<Browser> => {
  if (!HAVE_CHROMIUM)
    throw new Error(`no chromium at ${CHROMIUM}: install Debian's chromium or set CHROMIUM_PATH (CI must run these)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
};

/**
 * A fresh context and page; `axe`: JavaScript on and the CSP bypassed so axe-core can be injected (the pages have no
 * script), otherwise JavaScript off. Content-Security-Policy violations the page reports are collected in `csp`.
 */
export const newPage = async (
  browser: Browser,
  o: { axe?: boolean } = {},
): Promise<{ page: Page; context: BrowserContext; csp: string[] }> => {
  const context = await browser.newContext(o.axe ? { bypassCSP: true } : { javaScriptEnabled: false });
  const page = await context.newPage();
  const csp: string[] = [];
  page.on('console', (m) => void (/Content Security Policy/i.test(m.text()) && csp.push(m.text())));
  return { page, context, csp };
};

/** The browser's own, inside evaluate (the project's types have no DOM). */
declare const axe: {
  run: (o: unknown) => Promise<{ violations: { id: string; impact: string | null; nodes: unknown[] }[] }>;
};
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** The IDs of the serious or critical accessibility violations of the page as it is now (needs `newPage({ axe })`). */
export const axeViolations = async (page: Page): Promise<string[]> => {
  await page.addScriptTag({ content: AXE_SOURCE });
  const result = await page.evaluate(() => axe.run({ resultTypes: ['violations'] }));
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id);
};

/** `CONSOLE_SCREENSHOTS=docs/console`: the run also writes the README tour's screenshots there, as `<name>.png`. */
export const shoot = async (page: Page, name: string): Promise<void> => {
  const dir = process.env.CONSOLE_SCREENSHOTS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  await page.setViewportSize({ width: 1100, height: 760 });
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: false });
};

/** Clicks the button of that exact name and waits for the page it leads to (forms post and redirect). */
export const clickButton = async (page: Page, name: string): Promise<void> => {
  await Promise.all([page.waitForLoadState(), page.getByRole('button', { name, exact: true }).click()]);
  await page.waitForLoadState();
};

/** Signs in on the console's sign-in page with an API key. */
export const signIn = async (page: Page, key: string): Promise<void> => {
  await page.getByLabel('API key').fill(key);
  await clickButton(page, 'Sign in');
};
