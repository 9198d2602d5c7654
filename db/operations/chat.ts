/**
 * Chat persistence. A message and its deletion are auction changes: each locks
 * the auction row, takes the next seq and writes its event to the outbox in the
 * same transaction (the caller publishes the returned frame).
 */
import type { Knex } from 'knex';
import type { AuctionFrame } from '../../auction/frames.js';
import { insertEvents, lockAuction, lockReceipts, NEXT_MS, waitForDbTime } from './auctions.js';

export interface ChatRow {
  id: string;
  auction_id: string;
  user_id: string;
  text: string;
  client_msg_id: string | null;
  seq: string;
  created_at: Date;
  deleted_at: Date | null;
}

/** A ban row whose period has not ended (SQL; `row` qualifies the columns). */
const inForce = (row = 'auction_bans') => `(${row}.expires_at is null or ${row}.expires_at > clock_timestamp())`;

/** True when the user is banned from the auction now. */
export async function isBanned(db: Knex, auctionId: string, userId: string): Promise<boolean> {
  const row = await db('auction_bans').where({ auction_id: auctionId, user_id: userId }).whereRaw(inForce()).first('user_id');
  return Boolean(row);
}

export type PostOutcome =
  | { outcome: 'posted'; frame: AuctionFrame }
  | { outcome: 'duplicate' | 'not_found' | 'closed' | 'banned' };

export async function postChatMessage(
  db: Knex,
  input: { auctionId: string; userId: string; name: string; text: string; clientMsgId: string | null },
): Promise<PostOutcome> {
  return db.transaction(async (trx) => {
    const auction = await lockAuction(trx, input.auctionId);
    if (!auction) return { outcome: 'not_found' };
    if (auction.status === 'cancelled') return { outcome: 'closed' };
    if (await isBanned(trx, input.auctionId, input.userId)) return { outcome: 'banned' };
    if (input.clientMsgId) {
      const dup = await trx('chat_messages').where({ auction_id: input.auctionId, user_id: input.userId, client_msg_id: input.clientMsgId }).first('id');
      if (dup) return { outcome: 'duplicate' };
    }
    const seq = Number(auction.seq) + 1;
    const [row] = await trx('chat_messages')
      .insert({ auction_id: input.auctionId, user_id: input.userId, text: input.text, client_msg_id: input.clientMsgId, seq })
      .returning(['id', 'created_at']);
    const frame: AuctionFrame = {
      type: 'chat.message',
      auctionId: input.auctionId,
      seq,
      at: (row.created_at as Date).toISOString(),
      id: row.id,
      userId: input.userId,
      name: input.name,
      text: input.text,
      ...(input.clientMsgId ? { clientMsgId: input.clientMsgId } : {}),
    };
    await insertEvents(trx, [frame]);
    await trx('auctions').where({ id: input.auctionId }).update({ seq, updated_at: trx.raw('clock_timestamp()') });
    return { outcome: 'posted', frame };
  });
}

export async function deleteChatMessage(db: Knex, auctionId: string, messageId: string, by: string): Promise<AuctionFrame | null> {
  return db.transaction(async (trx) => {
    const auction = await lockAuction(trx, auctionId);
    if (!auction) return null;
    const msg = await trx('chat_messages').where({ id: messageId, auction_id: auctionId }).whereNull('deleted_at').forUpdate().first('id');
    if (!msg) return null;
    const seq = Number(auction.seq) + 1;
    await trx('chat_messages').where({ id: messageId }).update({ deleted_at: trx.raw('clock_timestamp()'), deleted_by: by });
    const frame: AuctionFrame = { type: 'chat.deleted', auctionId, seq, at: new Date().toISOString(), id: messageId };
    await insertEvents(trx, [frame]);
    await trx('auctions').where({ id: auctionId }).update({ seq, updated_at: trx.raw('clock_timestamp()') });
    return frame;
  });
}

/** Visible messages, newest first, keyset on seq. */
export async function chatHistory(db: Knex, auctionId: string, limit: number, beforeSeq: number | null) {
  const q = db('chat_messages as m').join('users as u', 'u.id', 'm.user_id').where({ 'm.auction_id': auctionId }).whereNull('m.deleted_at');
  if (beforeSeq !== null) q.where('m.seq', '<', beforeSeq);
  const rows = await q.orderBy('m.seq', 'desc').limit(limit).select('m.id', 'm.user_id', 'u.name', 'm.text', 'm.seq', 'm.created_at');
  return rows.map((r: { id: string; user_id: string; name: string; text: string; seq: string; created_at: Date }) => ({
    id: r.id,
    userId: r.user_id,
    name: r.name,
    text: r.text,
    seq: Number(r.seq),
    createdAt: r.created_at.toISOString(),
  }));
}

/*
 * A ban's start and end are judged against bids' receipt times, so each is set
 * as the owner's end is (endEarlyTx): under the auction's receipt lock (a bid
 * recorded meanwhile waits, and is never seen by a drain without the change),
 * at the database clock's next whole millisecond, committed once the clock has
 * reached it. So a bid recorded before the change is judged by the bans before
 * it, even in the same millisecond, and one recorded after it by the change.
 */

/**
 * Bans `userId` from the auction's chat and bids from now, for `durationSeconds`
 * or until lifted. A ban in force is extended or shortened (its period keeps its
 * start); after one has ended, a new period starts now.
 */
export async function upsertBan(db: Knex, auctionId: string, userId: string, durationSeconds: number | null, by: string): Promise<Date | null> {
  return db.transaction(async (trx) => {
    await lockReceipts(trx, auctionId);
    const expires = durationSeconds === null ? null : trx.raw(`${NEXT_MS} + make_interval(secs => ?)`, [durationSeconds]);
    const [row] = await trx('auction_bans')
      .insert({ auction_id: auctionId, user_id: userId, starts_at: trx.raw(NEXT_MS), expires_at: expires, created_by: by })
      .onConflict(['auction_id', 'user_id'])
      .merge({
        starts_at: trx.raw(`case when ${inForce()} then auction_bans.starts_at else excluded.starts_at end`),
        expires_at: trx.raw('excluded.expires_at'),
        created_by: trx.raw('excluded.created_by'),
      })
      .returning(['starts_at', 'expires_at']);
    await waitForDbTime(trx, (row.starts_at as Date).getTime());
    return (row.expires_at as Date | null) ?? null;
  });
}

/** Lifts the ban in force, if any: its period ends now (kept, for bids received during it and applied later). */
export async function deleteBan(db: Knex, auctionId: string, userId: string): Promise<void> {
  await db.transaction(async (trx) => {
    await lockReceipts(trx, auctionId);
    const [row] = await trx('auction_bans')
      .where({ auction_id: auctionId, user_id: userId })
      .whereRaw(inForce())
      .update({ expires_at: trx.raw(NEXT_MS) })
      .returning('expires_at');
    if (row) await waitForDbTime(trx, (row.expires_at as Date).getTime());
  });
}
