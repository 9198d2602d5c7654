/**
 * Redis stream keys the workers append to and the broadcaster reads. Per-user
 * private events share one stream (every broadcaster instance reads all of it and
 * delivers to the connections it holds).
 */
export const USER_EVENTS_MAXLEN = 100_000;

export function userEventsStream(redisPrefix: string): string {
  return `${redisPrefix}:stream:user-events`;
}
