/**
 * chat.send on the broadcaster. Refusals come back as `error` frames: anonymous
 * viewers (`unauthorized`), slow mode (`rate_limited`: one message a second per
 * user and auction, bursts of 5, a token bucket in Redis shared by every
 * instance), blocked words (`blocked`), bans (`banned`). An accepted message is
 * stored in Postgres with the auction's next seq and its `chat.message` event in
 * the outbox, in one transaction, then published to the auction's stream like
 * any auction event: subscribers on every instance get it from there, in seq
 * order. It is written here rather than through a queue: a chat line needs no
 * ordering against bids beyond the seq the row lock gives it, and this is one
 * hop shorter.
 */
import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
import { postChatMessage } from '../../db/operations/chat.js';
import { publishEvents } from '../../lib/publisher.js';
import type { AccessClaims } from '../../lib/jwt.js';
import type { Config } from '../../lib/env.js';

// KEYS[1]: bucket. ARGV: rate per second, burst, now (ms). Returns 1 if a token was taken.
const TAKE_TOKEN = `
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + (now - at) / 1000 * rate)
local ok = 0
if tokens >= 1 then tokens = tokens - 1; ok = 1 end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], 60000)
return ok`;

export type ChatResult = { ok: true } | { ok: false; code: string; message: string };

/**
 * The form words are compared in: compatibility forms folded (fullwidth `ｓｃａｍ`
 * is `scam`), invisible format characters dropped (`sc\u200bam`), every run of
 * spaces one space (`wire  transfer`, a non-breaking space), lower case.
 */
export function foldForFilter(text: string): string {
  return text.normalize('NFKC').replace(/\p{Cf}/gu, '').replace(/\s+/gu, ' ').toLowerCase();
}

export function blockedWordIn(text: string, words: string[]): string | undefined {
  const folded = foldForFilter(text);
  return words.find((w) => new RegExp(`(^|[^\\p{L}\\p{N}])${foldForFilter(w).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^\\p{L}\\p{N}])`, 'u').test(folded));
}

export async function sendChat(
  deps: { db: Knex; redis: Redis; config: Config },
  user: AccessClaims | null,
  frame: { auctionId: string; text: string; clientMsgId?: string },
): Promise<ChatResult> {
  if (!user) return { ok: false, code: 'unauthorized', message: 'sign in to chat' };
  const text = frame.text.trim();
  if (text.length === 0 || [...text].length > 500) return { ok: false, code: 'bad_frame', message: 'text must be 1..500 characters' };
  if (blockedWordIn(text, deps.config.chatBlockedWords)) return { ok: false, code: 'blocked', message: 'the message contains a blocked word' };
  const bucket = `${deps.config.redis.prefix}:chat:slow:{${frame.auctionId}}:${user.id}`;
  if ((await deps.redis.eval(TAKE_TOKEN, 1, bucket, 1, 5, Date.now())) !== 1) {
    return { ok: false, code: 'rate_limited', message: 'slow mode: one message a second' };
  }
  const r = await postChatMessage(deps.db, { auctionId: frame.auctionId, userId: user.id, name: user.name, text, clientMsgId: frame.clientMsgId ?? null });
  switch (r.outcome) {
    case 'posted':
      await publishEvents(deps.db, deps.redis, deps.config, [{ auctionId: frame.auctionId, seq: r.frame.seq, frame: r.frame }], []).catch(() => undefined);
      return { ok: true };
    case 'duplicate':
      return { ok: true };
    case 'banned':
      return { ok: false, code: 'banned', message: 'you are banned from this auction' };
    case 'not_found':
      return { ok: false, code: 'not_found', message: 'no such auction' };
    case 'closed':
      return { ok: false, code: 'chat_closed', message: 'this auction was cancelled' };
  }
}
