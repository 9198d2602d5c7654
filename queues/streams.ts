/**
 * Redis stream keys the workers append to and the broadcaster reads.
 * - One stream per auction; entry ids are `<seq>-0`, so an entry can be appended
 *   once only (Redis refuses an id not above the last) and a reader can resume
 *   from any seq. History is trimmed to about AUCTION_STREAM_MAXLEN entries
 *   (configuration, 2,000 by default).
 * - Per-user private events share one stream (every broadcaster instance reads
 *   all of it and delivers to the connections it holds).
 */
/**
 * Entries the user-events stream keeps, about. An entry holds one private event
 * or up to USER_EVENTS_PER_ENTRY of a round's batch (lib/publisher.ts), so this
 * bounds its memory to ~20 MB. Nothing reads its history: a broadcaster reads
 * from where it started, so this only needs to cover a slow reader's lag (~15 s
 * at 3,000 bids/s).
 */
export const USER_EVENTS_MAXLEN = 1_000;

export function userEventsStream(redisPrefix: string): string {
  return `${redisPrefix}:stream:user-events`;
}

/**
 * One user-events entry, as the stream key and the rest of its XADD arguments
 * (trimmed to about USER_EVENTS_MAXLEN): optionally `batch` and its id,
 * then a `userId`, `event` pair per event (the event as JSON), in order. The
 * broadcaster reads the pairs in order, so one entry carries one event or a
 * round's batch alike.
 */
export function userEventsEntry(redisPrefix: string, events: { userId: string; json: string }[], batchId?: string): { key: string; args: string[] } {
  const args = ['MAXLEN', '~', String(USER_EVENTS_MAXLEN), '*'];
  if (batchId !== undefined) args.push('batch', batchId);
  for (const e of events) args.push('userId', e.userId, 'event', e.json);
  return { key: userEventsStream(redisPrefix), args };
}

export function auctionStream(redisPrefix: string, auctionId: string): string {
  return `${redisPrefix}:stream:auction:${auctionId}`;
}
