/**
 * Resolves as `fn` does, or rejects after `ms`: a hung dependency (a Redis that
 * is gone, whose commands wait in a reconnecting client's queue; a silent
 * Postgres) fails a readiness check or a shutdown step instead of holding it.
 */
export async function within<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fn(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
