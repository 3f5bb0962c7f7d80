import { ApiError } from './errors';

export interface RateLimit {
  /** Requests a caller may make at once, and how many come back per window. */
  limit: number;
  windowSeconds: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets kept before full ones are dropped; a full bucket is the same as no bucket. */
const PRUNE_AT = 10_000;

/**
 * A token bucket per caller (an API key ID), in this process's memory: `limit` requests at once, refilled
 * at `limit` per `windowSeconds`. Several API processes each count on their own, so the effective budget
 * is `limit` × processes; the audit trail, not the limiter, is the record.
 */
export const rateLimiter = ({ limit, windowSeconds }: RateLimit, now: () => number = Date.now) => {
  const buckets = new Map<string, Bucket>();
  const refillPerMs = limit / (windowSeconds * 1000);

  const level = (key: string, at: number): number => {
    const bucket = buckets.get(key);
    return bucket ? Math.min(limit, bucket.tokens + (at - bucket.at) * refillPerMs) : limit;
  };

  const prune = (at: number) => {
    for (const [key] of buckets) if (level(key, at) >= limit) buckets.delete(key);
  };

  return {
    /** Takes one token for `key`, or throws a 429 problem whose Retry-After is when the next one comes. */
    take(key: string, what: string): void {
      const at = now();
      const tokens = level(key, at);
      if (tokens < 1) {
        const retryAfterSeconds = Math.max(1, Math.ceil((1 - tokens) / refillPerMs / 1000));
        throw ApiError.tooManyRequests(
          `at most ${limit} ${what} per ${windowSeconds} s per API key; retry in ${retryAfterSeconds} s`,
          retryAfterSeconds,
        );
      }
      if (buckets.size >= PRUNE_AT) prune(at);
      buckets.set(key, { tokens: tokens - 1, at });
    },
  };
};

export type RateLimiter = ReturnType<typeof rateLimiter>;
