import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Worker } from '@temporalio/worker';
import type { Browser } from 'playwright-core';
import { startApi, type RunningApi } from '../../runtime/app-server';
import { freePort } from '../../runtime/ports';
import { expect } from 'vitest';
import { bearer, readJson } from './api';
import { axeViolations, launchChromium, newPage, signIn } from './browser';
import { createTestServices, createTestWorker, type TestServices } from './services';

/** A message as the webhook channel delivers it to the stack's receiver (`JSON.parse` of the body). */
export interface WebhookMessage {
  idempotencyKey: string;
  template: string;
  locale: string;
  text: string;
}

/** The API over a real socket, as an operator's client calls it with `key`: the status and the JSON body. */
export const callApi = async <T>(
  baseUrl: string,
  key: string,
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<{ status: number; body: T }> => {
  const res = await fetch(`${baseUrl}${path}`, {
    method: init.method ?? 'GET',
    headers: bearer(key),
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  return { status: res.status, body: await readJson<T>(res) };
};

/** What a browser test file runs against: a real API server on a port of its own, a worker, and Chromium. */
export interface BrowserStack {
  services: TestServices;
  api: RunningApi;
  browser: Browser;
  /** Closes the browser, the worker, the server, the message receiver and the services, in that order. */
  stop(): Promise<void>;
}

/**
 * Starts the stack for a browser test file (in `beforeAll`; `stop` in `afterAll`). `onMessage`: the messages are
 * delivered by the webhook channel to a local receiver, which hands each body to it. If a step fails, what was
 * already started is stopped before the error is thrown.
 */
export const startBrowserStack = async (o: { onMessage?: (body: string) => void } = {}): Promise<BrowserStack> => {
  let receiver: Server | undefined;
  let services: TestServices | undefined;
  let api: RunningApi | undefined;
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  let browser: Browser | undefined;
  const stop = async () => {
    await browser?.close();
    worker?.shutdown();
    await running;
    await api?.close();
    receiver?.close();
    await services?.close();
  };
  try {
    const port = await freePort();
    const config = { HOST: '127.0.0.1', PORT: port, CUSTODIAN_PUBLIC_URL: `http://127.0.0.1:${port}` };
    if (o.onMessage) {
      const onMessage = o.onMessage;
      const server = createServer((req, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
        req.on('end', () => {
          onMessage(body);
          res.writeHead(200).end();
        });
      });
      receiver = server;
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      services = await createTestServices({
        config: {
          ...config,
          CUSTODIAN_NOTIFY_CHANNEL: 'webhook',
          CUSTODIAN_NOTIFY_WEBHOOK_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/messages`,
          CUSTODIAN_NOTIFY_WEBHOOK_SECRET: 'a-webhook-secret-of-at-least-32-characters',
        },
      });
    } else {
      services = await createTestServices({ config });
    }
    api = await startApi(services);
    worker = await createTestWorker(services);
    running = worker.run();
    browser = await launchChromium();
    return { services, api, browser, stop };
  } catch (err) {
    await stop();
    throw err;
  }
};

/**
 * Signs in with `key` on the first page (in a session of its own, JavaScript on for axe only), then checks each page
 * in turn: the `button` it must offer (once), and no serious or critical axe-core violation.
 */
export const expectAxeClean = async (
  browser: Browser,
  baseUrl: string,
  key: string,
  pages: { path: string; button?: string }[],
): Promise<void> => {
  const { page, context } = await newPage(browser, { axe: true });
  for (const [i, p] of pages.entries()) {
    await page.goto(`${baseUrl}${p.path}`);
    if (i === 0) await signIn(page, key);
    if (p.button) expect(await page.getByRole('button', { name: p.button }).count(), p.path).toBe(1);
    expect(await axeViolations(page), p.path).toEqual([]);
  }
  await context.close();
};
