import { ApplicationFailure } from '@temporalio/activity';
import type postgres from 'postgres';
import type { Db } from '../db/client';
import { rawSql } from './subject-writer';

/** The advisory-lock class of the outbox's per-key send lock (two-key form: class, hash of the key). */
const SEND_LOCK = 0x6e6f7469; // 'noti'

interface Slots {
  free: number;
  waiting: (() => void)[];
}

/**
 * Reserved connections per pool. A sender holds one across its send and queries through the same pool; were every
 * connection reserved, each sender would wait for a free one forever (a re-consent campaign of 20 subjects hung a
 * worker of 10 connections). So at most half the pool is reserved, counted per postgres.js client and shared by
 * every sender in the process (the subject notifier and the staff messenger alike).
 */
const slotsByClient = new WeakMap<postgres.Sql, Slots>();

const slotsFor = (client: postgres.Sql): Slots => {
  let slots = slotsByClient.get(client);
  if (!slots) {
    const max = Number((client.options as { max?: number }).max ?? 10);
    slots = { free: Math.max(1, Math.floor(max / 2)), waiting: [] };
    slotsByClient.set(client, slots);
  }
  return slots;
};

const acquire = async (slots: Slots) => {
  if (slots.free > 0) slots.free--;
  else await new Promise<void>((resolve) => slots.waiting.push(resolve));
};

const release = (slots: Slots) => {
  const next = slots.waiting.shift();
  if (next) next();
  else slots.free++;
};

/**
 * One sender per outbox key at a time: a session advisory lock on a reserved connection, held across the send (not
 * a transaction, so the idle-in-transaction limit does not cut it; a killed worker's session ends and frees it).
 * Temporal can start a retry while a timed-out attempt is still sending; that retry fails retryably here
 * (`NotificationBusy`) instead of sending twice.
 */
export const withSendLock = async <T>(db: Db, key: string, send: () => Promise<T>): Promise<T> => {
  const client = rawSql(db);
  const slots = slotsFor(client);
  await acquire(slots);
  try {
    const conn = await client.reserve();
    try {
      const [lock] = await conn<{ locked: boolean }[]>`
        select pg_try_advisory_lock(${SEND_LOCK}, hashtext(${key})) as locked`;
      if (!lock?.locked)
        throw ApplicationFailure.retryable(`notification ${key} is being sent by another attempt`, 'NotificationBusy');
      try {
        return await send();
      } finally {
        await conn`select pg_advisory_unlock(${SEND_LOCK}, hashtext(${key}))`;
      }
    } finally {
      conn.release();
    }
  } finally {
    release(slots);
  }
};
