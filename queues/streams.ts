/**
 * Redis stream keys the workers append to and the broadcaster reads.
 * - One stream per auction; entry ids are `<seq>-0`, so an entry can be appended
 *   once only (Redis refuses an id not above the last) and a reader can resume
 *   from any seq. History is trimmed to about AUCTION_STREAM_MAXLEN entries
 *   (configuration, 2,000 by default).
 * - Per-user private events share one stream (every broadcaster instance reads
 *   all of it and delivers to the connections it holds).
 */
export const USER_EVENTS_MAXLEN = 100_000;

export function userEventsStream(redisPrefix: string): string {
  return `${redisPrefix}:stream:user-events`;
}

export function auctionStream(redisPrefix: string, auctionId: string): string {
  return `${redisPrefix}:stream:auction:${auctionId}`;
}
