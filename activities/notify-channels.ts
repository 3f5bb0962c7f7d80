import { createHash, createHmac } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import nodemailer from 'nodemailer';
import type { IncidentTemplate } from '../domain/incident-templates';
import type { NotificationLocale, NotificationTemplate } from '../domain/notification-templates';
import { ConfigError, type Config } from '../runtime/config';
import type { Logger } from '../runtime/logger';

/** One message as a channel sends it. `to` is the decrypted address: it lives only for this call. */
export interface OutgoingMessage {
  idempotencyKey: string;
  /**
   * `operator-alert`: a page to the operator (activities/alerts.ts); `incident-*`, `deadline-*`: messages to staff
   * about an incident (activities/staff-messages.ts), which also sends other processes' staff messages
   * (`access-review-*`, `obligation-*`). The rest are messages to subjects.
   */
  template: NotificationTemplate | 'operator-alert' | IncidentTemplate | (string & {});
  locale: NotificationLocale;
  /** `subject:<id>` (or `operator`): what logs and the outbox name instead of the address. */
  recipientRef: string;
  to: string;
  subject: string;
  text: string;
}

export interface Channel {
  name: Config['CUSTODIAN_NOTIFY_CHANNEL'];
  send(message: OutgoingMessage): Promise<void>;
  close?(): void;
}

/**
 * A failed send. The message is a code (HTTP status, SMTP reply code, network error code) and never the
 * receiver's text, which may quote the address; `retryable` is false when trying again cannot help.
 */
export class ChannelError extends Error {
  override name = 'ChannelError';
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** `X-Custodian-Signature` value: HMAC-SHA256 over the exact bytes of the body. */
export const webhookSignature = (secret: string, body: string): string =>
  `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;

/** A Message-ID derived from the idempotency key, so a re-sent message carries the same one. */
export const notificationMessageId = (idempotencyKey: string, from: string): string => {
  const domain = /@([^\s>]+)>?\s*$/.exec(from)?.[1] ?? 'custodian.invalid';
  return `<${createHash('sha256').update(idempotencyKey, 'utf8').digest('hex').slice(0, 40)}@${domain}>`;
};

/** Network error code of a failed fetch (undici puts it on `cause`), never its message. */
const networkCode = (err: unknown): string => {
  const e = err as { name?: string; code?: string; cause?: { code?: string; name?: string } };
  if (e?.name === 'TimeoutError' || e?.cause?.name === 'TimeoutError') return 'timeout';
  return e?.cause?.code ?? e?.code ?? e?.name ?? 'error';
};

export interface WebhookOptions {
  url: string;
  secret: string;
  timeoutMs: number;
  /** Tries per activity attempt (5xx, 408, 429 and network errors); the activity's own retries come on top. */
  tries?: number;
  backoffMs?: number;
}

/**
 * JSON POST `{ idempotencyKey, template, locale, to, subject, text }`, signed, with `Idempotency-Key`
 * so the receiver can drop a message it already has (a crash between sending and recording re-sends it).
 */
export const webhookChannel = ({ url, secret, timeoutMs, tries = 3, backoffMs = 250 }: WebhookOptions): Channel => ({
  name: 'webhook',
  async send(m) {
    const body = JSON.stringify({
      idempotencyKey: m.idempotencyKey,
      template: m.template,
      locale: m.locale,
      to: m.to,
      subject: m.subject,
      text: m.text,
    });
    const headers = {
      'content-type': 'application/json; charset=utf-8',
      'idempotency-key': m.idempotencyKey,
      'x-custodian-signature': webhookSignature(secret, body),
    };
    let failure = new ChannelError('webhook: not sent', true);
    for (let attempt = 1; attempt <= tries; attempt++) {
      if (attempt > 1) await sleep(backoffMs * 4 ** (attempt - 2));
      let status: number;
      try {
        // A redirect is not followed: it would re-send the address and the signature to another URL.
        const res = await fetch(url, {
          method: 'POST',
          headers,
          body,
          redirect: 'manual',
          signal: AbortSignal.timeout(timeoutMs),
        });
        status = res.status;
        await res.body?.cancel();
      } catch (err) {
        failure = new ChannelError(`webhook: ${networkCode(err)}`, true);
        continue;
      }
      if (status >= 200 && status < 300) return;
      const retryable = status >= 500 || status === 408 || status === 429;
      failure = new ChannelError(`webhook: HTTP ${status}`, retryable);
      if (!retryable) break;
    }
    throw failure;
  },
});

export interface SmtpOptions {
  url: string;
  from: string;
  timeoutMs: number;
}

/** Mail through nodemailer; the Message-ID and `X-Custodian-Idempotency-Key` come from the idempotency key. */
export const smtpChannel = ({ url, from, timeoutMs }: SmtpOptions): Channel => {
  const transport = nodemailer.createTransport({
    url,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  });
  return {
    name: 'smtp',
    async send(m) {
      try {
        await transport.sendMail({
          from,
          to: m.to,
          subject: m.subject,
          text: m.text,
          messageId: notificationMessageId(m.idempotencyKey, from),
          headers: { 'X-Custodian-Idempotency-Key': m.idempotencyKey, 'Content-Language': m.locale },
        });
      } catch (err) {
        const e = err as { code?: string; responseCode?: number };
        // A 5xx reply is permanent (a refused recipient or message); 4xx and connection errors may pass later.
        const permanent = typeof e.responseCode === 'number' && e.responseCode >= 500;
        throw new ChannelError(`smtp: ${e.code ?? 'error'}${e.responseCode ? ` ${e.responseCode}` : ''}`, !permanent);
      }
    },
    close: () => transport.close(),
  };
};

/** One line per message: key, template, locale and recipient reference; never the address or the text. */
export const logChannel = (logger: Logger): Channel => ({
  name: 'log',
  async send(m) {
    logger.info(
      {
        notification: {
          idempotencyKey: m.idempotencyKey,
          template: m.template,
          locale: m.locale,
          recipient: m.recipientRef,
        },
      },
      'notification (log channel)',
    );
  },
});

/** The configured channel; refuses a configuration that lacks what the channel needs. */
export const createChannel = (config: Config, logger: Logger): Channel => {
  switch (config.CUSTODIAN_NOTIFY_CHANNEL) {
    case 'webhook': {
      const { CUSTODIAN_NOTIFY_WEBHOOK_URL: url, CUSTODIAN_NOTIFY_WEBHOOK_SECRET: secret } = config;
      if (!url || !secret)
        throw new ConfigError('CUSTODIAN_NOTIFY_WEBHOOK_URL and _SECRET are required with the webhook channel');
      return webhookChannel({ url, secret, timeoutMs: config.CUSTODIAN_NOTIFY_TIMEOUT_MS });
    }
    case 'smtp': {
      const { SMTP_URL: url, SMTP_FROM: from } = config;
      if (!url || !from) throw new ConfigError('SMTP_URL and SMTP_FROM are required with the smtp channel');
      return smtpChannel({ url, from, timeoutMs: config.CUSTODIAN_NOTIFY_TIMEOUT_MS });
    }
    default:
      return logChannel(logger);
  }
};
