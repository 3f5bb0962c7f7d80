/**
 * Polls a probe until it returns a value (a thrown probe counts as "not yet"): tests wait on state,
 * never on the clock. No vitest import, so the replay recorder can use it too.
 */
export const waitFor = async <T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};
