import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { eq, sql } from 'drizzle-orm';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notifyActivities, type NotificationSent, type SendNotification } from '../../activities/notify';
import { notificationMessageId } from '../../activities/notify-channels';
import { notifications, subjects } from '../../db/schema';
import { ConfigError, loadConfig, type Config } from '../../runtime/config';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { createLogger } from '../../runtime/logger';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { insertNotice, insertSubject, NOTICE_TEXTS } from '../helpers/notifications';
import { waitFor } from '../helpers/wait';

const SECRET = 'a-webhook-secret-of-at-least-32-characters';
const FROM = 'Custodian <notices@custodian.example>';
const ZH_EMAIL = 'li.lei@example.cn';
const EN_EMAIL = 'jane.doe@example.com';

let database: TestDatabase;
const keyring = parseKeyring(generateKeyFile(), 'test');
let zhSubject: string;
let enSubject: string;
let noEmailSubject: string;
let noticeId: string;

// A webhook receiver: records each request; answers with the queued statuses, then 200.
interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}
let webhook: Server;
let webhookUrl: string;
const received: Received[] = [];
const statuses: number[] = [];
/** While set, the receiver answers only once it resolves; `arrivals` counts requests as they come in. */
let hold: Promise<void> | undefined;
let arrivals = 0;

// An SMTP receiver: records each message's raw text.
let smtp: SMTPServer;
let smtpPort: number;
const mails: { to: string[]; raw: string }[] = [];

const logLines: string[] = [];
const logger = createLogger('debug', { write: (line: string) => void logLines.push(line) });

const configFor = (overrides: Partial<Config>): Config => ({
  ...loadConfig({}),
  CUSTODIAN_NOTIFY_TIMEOUT_MS: 5_000,
  ...overrides,
});

const activitiesFor = (overrides: Partial<Config>) =>
  notifyActivities({ db: database.db, keyring, config: configFor(overrides), logger, clock: () => new Date() });

let webhookActs: ReturnType<typeof notifyActivities>;
let smtpActs: ReturnType<typeof notifyActivities>;
let logActs: ReturnType<typeof notifyActivities>;

const send = (acts: ReturnType<typeof notifyActivities>, input: SendNotification) =>
  new MockActivityEnvironment().run(acts.sendNotification, input) as Promise<NotificationSent>;

let keys = 0;
const newKey = (label: string) => `test-${label}-${++keys}-${Date.now()}`;

const outboxRow = async (idempotencyKey: string) =>
  (await database.db.select().from(notifications).where(eq(notifications.idempotencyKey, idempotencyKey)))[0]!;

const failureOf = async (promise: Promise<unknown>): Promise<ApplicationFailure> => {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
};

beforeAll(async () => {
  database = await createTestDatabase();
  zhSubject = await insertSubject(database.db, keyring, { locale: 'zh-CN', email: ZH_EMAIL });
  enSubject = await insertSubject(database.db, keyring, { locale: 'en', email: EN_EMAIL });
  noEmailSubject = await insertSubject(database.db, keyring, { locale: 'en' });
  noticeId = await insertNotice(database.db);

  webhook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    arrivals++;
    req.on('end', async () => {
      await hold;
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = statuses.shift() ?? 200;
      res.end(res.statusCode >= 400 ? `rejected ${ZH_EMAIL}` : 'ok');
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook`;

  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8') });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  smtpPort = (smtp.server.address() as AddressInfo).port;

  webhookActs = activitiesFor({
    CUSTODIAN_NOTIFY_CHANNEL: 'webhook',
    CUSTODIAN_NOTIFY_WEBHOOK_URL: webhookUrl,
    CUSTODIAN_NOTIFY_WEBHOOK_SECRET: SECRET,
  });
  smtpActs = activitiesFor({
    CUSTODIAN_NOTIFY_CHANNEL: 'smtp',
    SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
    SMTP_FROM: FROM,
  });
  logActs = activitiesFor({});
});

afterAll(async () => {
  await new Promise((resolve) => webhook?.close(resolve));
  await new Promise((resolve) => smtp?.close(() => resolve(undefined)));
  await database?.drop();
});

const verifySignature = (r: Received) => {
  const header = String(r.headers['x-custodian-signature']);
  expect(header).toMatch(/^sha256=[0-9a-f]{64}$/);
  const expected = createHmac('sha256', SECRET).update(r.body, 'utf8').digest();
  return timingSafeEqual(Buffer.from(header.slice('sha256='.length), 'hex'), expected);
};

// A minimal reader of the one-part text mails nodemailer writes: headers (RFC 2047 words) and the body.
const decodeWords = (value: string) =>
  value.replace(/\s*=\?utf-8\?([bq])\?([^?]*)\?=/gi, (_, enc: string, text: string) =>
    enc.toLowerCase() === 'b'
      ? Buffer.from(text, 'base64').toString('latin1')
      : text.replace(/_/g, ' ').replace(/=([0-9a-f]{2})/gi, (__, h: string) => String.fromCharCode(parseInt(h, 16))),
  );
const readMail = (raw: string) => {
  const [head, ...rest] = raw.split('\r\n\r\n');
  const headers = new Map<string, string>();
  for (const line of head!.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const at = line.indexOf(':');
    headers.set(line.slice(0, at).toLowerCase(), line.slice(at + 1).trim());
  }
  const body = rest.join('\r\n\r\n');
  const encoding = headers.get('content-transfer-encoding')?.toLowerCase();
  const text =
    encoding === 'base64'
      ? Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8')
      : encoding === 'quoted-printable'
        ? Buffer.from(
            body
              .replace(/=\r\n/g, '')
              .replace(/=([0-9A-F]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
            'latin1',
          ).toString('utf8')
        : body;
  const subject = Buffer.from(decodeWords(headers.get('subject') ?? ''), 'latin1').toString('utf8');
  return { headers, subject, text };
};

describe('notifier: webhook channel', () => {
  it('POSTs signed JSON in the subject’s language (zh-CN and en), with the idempotency key', async () => {
    received.length = 0;
    const zhKey = newKey('zh');
    const zh = await send(webhookActs, {
      idempotencyKey: zhKey,
      template: 'consent-request',
      subjectId: zhSubject,
      noticeId,
      link: 'https://consent.example/c/abc',
    });
    expect(zh).toMatchObject({ sent: true, channel: 'webhook', locale: 'zh-CN' });
    const enKey = newKey('en');
    await send(webhookActs, { idempotencyKey: enKey, template: 'consent-request', subjectId: enSubject, noticeId });
    expect(received).toHaveLength(2);

    const [zhReq, enReq] = received as [Received, Received];
    expect(verifySignature(zhReq)).toBe(true);
    expect(verifySignature(enReq)).toBe(true);
    expect(zhReq.headers['idempotency-key']).toBe(zhKey);
    const zhBody = JSON.parse(zhReq.body) as Record<string, string>;
    expect(zhBody).toMatchObject({ idempotencyKey: zhKey, template: 'consent-request', locale: 'zh-CN', to: ZH_EMAIL });
    expect(zhBody.subject).toBe(`请求您的同意：${NOTICE_TEXTS['zh-CN'].title}`);
    expect(zhBody.text).toContain(NOTICE_TEXTS['zh-CN'].body);
    expect(zhBody.text).toContain('请在此处答复：https://consent.example/c/abc');
    const enBody = JSON.parse(enReq.body) as Record<string, string>;
    expect(enBody).toMatchObject({ locale: 'en', to: EN_EMAIL });
    expect(enBody.subject).toBe(`Your consent is requested: ${NOTICE_TEXTS.en.title}`);
    expect(enBody.text).toContain(NOTICE_TEXTS.en.body);
    expect(enBody.text).not.toMatch(/[\u4e00-\u9fff]/);

    // A body altered after signing does not verify.
    expect(verifySignature({ ...zhReq, body: zhReq.body.replace('zh-CN', 'en') })).toBe(false);

    const row = await outboxRow(zhKey);
    expect(row).toMatchObject({ status: 'sent', attempts: 1, channel: 'webhook', locale: 'zh-CN', lastError: null });
    expect(row.recipientRef).toBe(`subject:${zhSubject}`);
    expect(row.sentAt).toBeInstanceOf(Date);
    expect(row.bodySha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('delivers once for the same idempotency key sent twice', async () => {
    received.length = 0;
    const key = newKey('twice');
    const input = { idempotencyKey: key, template: 'consent-reminder' as const, subjectId: enSubject, noticeId };
    expect((await send(webhookActs, input)).sent).toBe(true);
    expect((await send(webhookActs, input)).sent).toBe(false);
    expect(received).toHaveLength(1);
    expect((await outboxRow(key)).attempts).toBe(1);

    // The same key for another message is refused, not sent.
    const reused = await failureOf(send(webhookActs, { ...input, subjectId: zhSubject }));
    expect(reused.type).toBe('IdempotencyKeyReused');
    expect(received).toHaveLength(1);
  });

  it('a second attempt while the first is still sending fails retryably instead of sending again', async () => {
    received.length = 0;
    arrivals = 0;
    let release!: () => void;
    hold = new Promise((resolve) => (release = resolve));
    const key = newKey('overlap');
    const input = { idempotencyKey: key, template: 'consent-request' as const, subjectId: enSubject, noticeId };
    const first = send(webhookActs, input);
    await waitFor(async () => (arrivals === 1 ? true : undefined), 'the first request at the receiver');
    const second = await failureOf(send(webhookActs, input));
    expect(second).toMatchObject({ type: 'NotificationBusy', nonRetryable: false });
    release();
    hold = undefined;
    expect((await first).sent).toBe(true);
    expect((await send(webhookActs, input)).sent).toBe(false);
    expect(arrivals).toBe(1);
    expect(await outboxRow(key)).toMatchObject({ status: 'sent', attempts: 1 });
  });

  it('many more sends at once than the pool has connections all complete (at most half the pool is reserved)', async () => {
    received.length = 0;
    arrivals = 0;
    let release!: () => void;
    hold = new Promise((resolve) => (release = resolve));
    const inputs = Array.from({ length: 30 }, (_, i) => ({
      idempotencyKey: newKey(`burst-${i}`),
      template: 'transfer-notice' as const,
      subjectId: i % 2 ? enSubject : zhSubject,
      noticeId,
    }));
    // 30 senders on a pool of 10: each holds a reserved connection while it queries through the pool.
    const sends = Promise.all(inputs.map((input) => send(webhookActs, input)));
    await waitFor(async () => (arrivals === 5 ? true : undefined), 'five sends held at the receiver');
    // Half the pool is reserved by senders; the other half still serves queries.
    expect(await database.sql`select 1 as n`).toEqual([{ n: 1 }]);
    expect(arrivals).toBe(5);
    release();
    hold = undefined;
    const results = await sends;
    expect(results.every((r) => r.sent)).toBe(true);
    expect(received).toHaveLength(30);
  });

  it('retries a receiver that answers 500, then 200, inside one attempt', async () => {
    received.length = 0;
    statuses.push(500);
    const key = newKey('retry');
    await send(webhookActs, { idempotencyKey: key, template: 'transfer-notice', subjectId: enSubject, noticeId });
    expect(received).toHaveLength(2);
    expect(received[0]!.body).toBe(received[1]!.body);
    expect(received.map((r) => r.headers['idempotency-key'])).toEqual([key, key]);
    expect(await outboxRow(key)).toMatchObject({ status: 'sent', attempts: 1 });
  });

  it('a receiver that keeps failing: a retryable failure recorded without personal data; the next attempt sends', async () => {
    received.length = 0;
    statuses.push(503, 503, 503);
    const key = newKey('down');
    const input = { idempotencyKey: key, template: 'consent-request' as const, subjectId: zhSubject, noticeId };
    const failure = await failureOf(send(webhookActs, input));
    expect(failure.nonRetryable).toBe(false);
    expect(failure.message).not.toContain(ZH_EMAIL);
    expect(received).toHaveLength(3);
    expect(await outboxRow(key)).toMatchObject({ status: 'pending', attempts: 1, lastError: 'webhook: HTTP 503' });

    expect((await send(webhookActs, input)).sent).toBe(true);
    expect(received).toHaveLength(4);
    expect(await outboxRow(key)).toMatchObject({ status: 'sent', attempts: 2, lastError: null });
  });

  it('a 4xx answer fails at once, not retryable', async () => {
    received.length = 0;
    statuses.push(400);
    const key = newKey('rejected');
    const failure = await failureOf(
      send(webhookActs, { idempotencyKey: key, template: 'consent-request', subjectId: enSubject, noticeId }),
    );
    expect(failure).toMatchObject({ type: 'NotificationRejected', nonRetryable: true });
    expect(received).toHaveLength(1);
    expect(await outboxRow(key)).toMatchObject({ status: 'failed', lastError: 'webhook: HTTP 400' });
    // A redirect is not followed (it would carry the address elsewhere): it fails the same way.
    received.length = 0;
    statuses.push(307);
    const redirected = await failureOf(
      send(webhookActs, {
        idempotencyKey: newKey('redirect'),
        template: 'consent-request',
        subjectId: enSubject,
        noticeId,
      }),
    );
    expect(redirected).toMatchObject({ type: 'NotificationRejected', nonRetryable: true });
    expect(received).toHaveLength(1);
  });

  it('an unreachable receiver is a retryable failure naming the network error only', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const acts = notifyActivities({
      db: database.db,
      keyring,
      logger,
      clock: () => new Date(),
      config: configFor({
        CUSTODIAN_NOTIFY_CHANNEL: 'webhook',
        CUSTODIAN_NOTIFY_WEBHOOK_URL: `http://127.0.0.1:${port}/hook`,
        CUSTODIAN_NOTIFY_WEBHOOK_SECRET: SECRET,
      }),
    });
    const key = newKey('unreachable');
    const failure = await failureOf(
      send(acts, { idempotencyKey: key, template: 'consent-request', subjectId: enSubject, noticeId }),
    );
    expect(failure.nonRetryable).toBe(false);
    expect((await outboxRow(key)).lastError).toBe('webhook: ECONNREFUSED');
  });

  it('NoRecipient (not retryable) for a subject without an address, a destroyed or an unknown one', async () => {
    received.length = 0;
    const none = await failureOf(
      send(webhookActs, {
        idempotencyKey: newKey('none'),
        template: 'consent-request',
        subjectId: noEmailSubject,
        noticeId,
      }),
    );
    expect(none).toMatchObject({ type: 'NoRecipient', nonRetryable: true });

    const destroyed = await insertSubject(database.db, keyring, { locale: 'en', email: 'gone@example.com' });
    await database.db.update(subjects).set({ status: 'destroyed' }).where(eq(subjects.id, destroyed));
    const gone = await failureOf(
      send(webhookActs, {
        idempotencyKey: newKey('gone'),
        template: 'consent-request',
        subjectId: destroyed,
        noticeId,
      }),
    );
    expect(gone).toMatchObject({ type: 'NoRecipient', nonRetryable: true });

    // Crypto-shredded: the key is gone, the ciphertext stays, and nothing can be read.
    const shredded = await insertSubject(database.db, keyring, { locale: 'en', email: 'shredded@example.com' });
    await database.sql`delete from subject_keys where subject_id = ${shredded}`;
    const unreadable = await failureOf(
      send(webhookActs, {
        idempotencyKey: newKey('shred'),
        template: 'consent-request',
        subjectId: shredded,
        noticeId,
      }),
    );
    expect(unreadable).toMatchObject({ type: 'NoRecipient', nonRetryable: true });
    expect(received).toHaveLength(0);
  });
});

describe('notifier: smtp channel', () => {
  it('mails the subject in its language with a Message-ID derived from the idempotency key, once per key', async () => {
    mails.length = 0;
    const zhKey = newKey('mail-zh');
    const enKey = newKey('mail-en');
    await send(smtpActs, { idempotencyKey: zhKey, template: 'transfer-notice', subjectId: zhSubject, noticeId });
    await send(smtpActs, { idempotencyKey: enKey, template: 'consent-reminder', subjectId: enSubject, noticeId });
    await send(smtpActs, { idempotencyKey: zhKey, template: 'transfer-notice', subjectId: zhSubject, noticeId });
    expect(mails).toHaveLength(2);

    const zh = readMail(mails[0]!.raw);
    expect(mails[0]!.to).toEqual([ZH_EMAIL]);
    expect(zh.headers.get('message-id')).toBe(notificationMessageId(zhKey, FROM));
    expect(zh.headers.get('message-id')).toMatch(/^<[0-9a-f]{40}@custodian\.example>$/);
    expect(zh.headers.get('x-custodian-idempotency-key')).toBe(zhKey);
    expect(zh.subject).toBe('告知：您的个人信息将转移至Example Retail Ltd');
    expect(zh.text).toContain('由Old Retail Ltd处理的您的个人信息将转移至Example Retail Ltd。');
    expect(zh.text).toContain(NOTICE_TEXTS['zh-CN'].body);

    const en = readMail(mails[1]!.raw);
    expect(mails[1]!.to).toEqual([EN_EMAIL]);
    expect(en.headers.get('message-id')).toBe(notificationMessageId(enKey, FROM));
    expect(en.subject).toBe(`Reminder: your consent is requested: ${NOTICE_TEXTS.en.title}`);
    expect(en.text).toContain(NOTICE_TEXTS.en.body);

    expect(await outboxRow(zhKey)).toMatchObject({ status: 'sent', attempts: 1, channel: 'smtp', locale: 'zh-CN' });
  });
});

describe('notifier: log channel and the outbox', () => {
  it('logs the key, template, locale and recipient reference, never the address or the text', async () => {
    logLines.length = 0;
    const key = newKey('log');
    await send(logActs, { idempotencyKey: key, template: 'consent-request', subjectId: zhSubject, noticeId });
    const lines = logLines.filter((l) => l.includes(key));
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!) as { notification: Record<string, string> };
    expect(entry.notification).toEqual({
      idempotencyKey: key,
      template: 'consent-request',
      locale: 'zh-CN',
      recipient: `subject:${zhSubject}`,
    });
    const all = logLines.join('\n');
    expect(all).not.toContain(ZH_EMAIL);
    expect(all).not.toContain(NOTICE_TEXTS['zh-CN'].body);
    const row = await outboxRow(key);
    expect(row).toMatchObject({ status: 'sent', channel: 'log' });
    const audited = await database.sql<{ action: string; target_id: string; details: Record<string, unknown> }[]>`
      select action, target_id, details from audit_log where details->>'notificationId' = ${row.id}`;
    expect(audited.map((a) => ({ ...a }))).toEqual([
      {
        action: 'notification.sent',
        target_id: zhSubject,
        details: {
          notificationId: row.id,
          template: 'consent-request',
          channel: 'log',
          noticeId,
          locale: 'zh-CN',
          bodySha256: row.bodySha256,
        },
      },
    ]);
  });

  it('no outbox row or audit entry holds an address, a message text or a receiver’s reply', async () => {
    const rows = await database.db.execute<{ row: string }>(
      sql`select row_to_json(n)::text as row from notifications n union all select row_to_json(a)::text from audit_log a`,
    );
    expect(rows.length).toBeGreaterThan(20);
    const failed = await database.sql<{ code: string }[]>`
      select details->>'code' as code from audit_log where action = 'notification.failed' order by seq`;
    expect(failed.map((f) => f.code)).toEqual([
      'webhook: HTTP 400',
      'webhook: HTTP 307',
      'NoRecipient',
      'NoRecipient',
      'NoRecipient',
    ]);
    for (const { row } of rows) {
      for (const secret of [ZH_EMAIL, EN_EMAIL, 'gone@example.com', 'shredded@example.com', '@example'])
        expect(row).not.toContain(secret);
      expect(row).not.toContain(NOTICE_TEXTS.en.body);
      expect(row).not.toContain(NOTICE_TEXTS['zh-CN'].body);
    }
  });
});

describe('notifier configuration', () => {
  it('refuses a channel without what it needs, and never echoes the secret', () => {
    expect(() => loadConfig({ CUSTODIAN_NOTIFY_CHANNEL: 'webhook' })).toThrow(ConfigError);
    expect(() => loadConfig({ CUSTODIAN_NOTIFY_CHANNEL: 'webhook' })).toThrow(/CUSTODIAN_NOTIFY_WEBHOOK_URL/);
    expect(() =>
      loadConfig({ CUSTODIAN_NOTIFY_CHANNEL: 'webhook', CUSTODIAN_NOTIFY_WEBHOOK_URL: 'https://hooks.example/x' }),
    ).toThrow(/CUSTODIAN_NOTIFY_WEBHOOK_SECRET: required/);
    expect(() => loadConfig({ CUSTODIAN_NOTIFY_WEBHOOK_SECRET: 'short-secret' })).toThrow(
      /^CUSTODIAN_NOTIFY_WEBHOOK_SECRET: must be at least 32 characters$/,
    );
    expect(() => loadConfig({ CUSTODIAN_NOTIFY_CHANNEL: 'smtp', SMTP_URL: 'smtp://127.0.0.1:25' })).toThrow(
      /SMTP_FROM/,
    );
    expect(loadConfig({}).CUSTODIAN_NOTIFY_CHANNEL).toBe('log');
  });
});
