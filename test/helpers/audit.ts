/**
 * Bursts of bids over HTTP and an audit of what became of them, from evidence
 * the pipeline does not produce about itself: the client's acknowledgements,
 * and a replay of every auction's recorded bids through the pure rules.
 */
import type { ExecutionContext } from 'ava';
import { applyBid, BanPeriods, startAuction, type AuctionState } from '../../auction/engine.js';
import { auctionStream } from '../../queues/streams.js';
import { bid, storedUserEvents, waitFor } from './auctions.js';
import type { System, TestUser } from './system.js';

/**
 * Fires `perAuction` bids at each auction from `users`, all at once; every one
 * must be acknowledged (202), else the audit would pass on nothing. Returns the
 * acknowledged bid ids.
 */
export async function burst(t: ExecutionContext, sys: System, auctions: string[], users: TestUser[], perAuction: number, base: number): Promise<string[]> {
  const jobs = auctions.flatMap((id) => Array.from({ length: perAuction }, (_, k) => ({ id, u: users[k % users.length]!, amount: base + k * 100 })));
  const res = await Promise.all(jobs.map((j) => bid(sys, j.u, j.id, j.amount)));
  const refused = res.filter((r) => r.status !== 202).map((r) => r.status);
  t.deepEqual(refused, [], 'every bid of the burst acknowledged');
  return res.filter((r) => r.status === 202).map((r) => r.body.bidId as string);
}

/** Every acknowledged bid has its row at once: acknowledged means recorded. */
export async function recorded(sys: System, acked: string[]): Promise<number> {
  const rows = await sys.db('bids').whereIn('id', acked).count<{ count: string }[]>('* as count');
  return Number(rows[0]!.count);
}

/**
 * The auction's recorded bids run through the pure rules in receipt order, from
 * the state its creation and start give: the verdicts (status, reason, seq) that
 * differ from those stored, and whether the final state differs.
 */
export async function replay(sys: System, auctionId: string): Promise<{ mismatched: string[]; stateDiffers: boolean }> {
  const a = await sys.db('auctions').where({ id: auctionId }).first();
  const rows = await sys.db('bids as b')
    .join('users as u', 'u.id', 'b.bidder_id')
    .where({ 'b.auction_id': auctionId })
    .orderBy('b.receipt_no')
    .select('b.*', 'u.name', sys.db.raw('floor(extract(epoch from b.received_at) * 1000)::bigint as received_ms'));
  const bans = new BanPeriods();
  for (const b of await sys.db('auction_bans').where({ auction_id: auctionId })) bans.add(b.user_id, b.starts_at.getTime(), b.expires_at?.getTime() ?? null);
  const names = new Map<string, string>(rows.map((r) => [r.bidder_id, r.name]));
  let state: AuctionState = {
    id: auctionId,
    sellerId: a.seller_id,
    status: 'scheduled',
    startingPrice: Number(a.starting_price),
    reservePrice: a.reserve_price === null ? null : Number(a.reserve_price),
    bidIncrement: a.bid_increment === null ? null : Number(a.bid_increment),
    currentPrice: Number(a.starting_price),
    leaderId: null,
    leaderOrder: 0,
    bidCount: 0,
    endsAt: null,
    softCloseSeconds: a.soft_close_seconds,
    seq: 0,
    proxies: [],
  };
  state = startAuction(state, a.starts_at.getTime(), a.duration_seconds)!.state;
  const mismatched: string[] = [];
  for (const r of rows) {
    const out = applyBid(
      state,
      { id: r.id, kind: r.kind, bidderId: r.bidder_id, bidderName: r.name, amount: Number(r.amount), receivedAt: Number(r.received_ms), receiptNo: Number(r.receipt_no) },
      { banned: bans, names },
    );
    const want = { status: out.verdict.status, reason: out.verdict.reason ?? null, seq: out.verdict.seq ?? null };
    const got = { status: r.status, reason: r.reason, seq: r.seq === null ? null : Number(r.seq) };
    if (JSON.stringify(want) !== JSON.stringify(got)) mismatched.push(r.id);
    state = out.state;
  }
  const stateDiffers = state.leaderId !== a.leader_id || state.currentPrice !== Number(a.current_price) || state.seq !== Number(a.seq) || state.bidCount !== a.bid_count;
  return { mismatched, stateDiffers };
}

export interface Audit {
  /** Acknowledged, and never applied (or not even recorded). */
  lost: number;
  /** Applied more than once: a second bid.ack or bid.placed. */
  duplicated: number;
  /** Verdicts that differ from a replay in receipt order (wrong, out of order, or skipped). */
  mismatched: number;
  accepted: number;
}

/**
 * Waits up to `ms` for every acknowledged bid to be applied, then audits the
 * auctions: lost and duplicated effects (one ack per bid, one bid.placed per
 * accepted bid, at its seq), the replay, seqs gapless in the outbox, and every
 * auction's stream holding exactly its events 1..seq once publishing caught up.
 */
export async function audit(t: ExecutionContext, sys: System, acked: string[], auctions: string[], ms = 60_000): Promise<Audit> {
  await waitFor(async () => {
    const left = await sys.db('bids').whereIn('id', acked).where({ status: 'queued' }).count<{ count: string }[]>('* as count');
    return Number(left[0]!.count) === 0;
  }, ms, 'every acknowledged bid applied').catch(() => undefined);
  const rows = await sys.db('bids').whereIn('id', acked);
  const applied = rows.filter((r) => r.status !== 'queued');
  const lost = acked.length - applied.length;
  const bidders = [...new Set(rows.map((r) => r.bidder_id as string))];
  const acks = new Map<string, number>();
  for (const e of await storedUserEvents(sys.db, bidders, 'bid.ack')) acks.set(e.payload.bidId as string, (acks.get(e.payload.bidId as string) ?? 0) + 1);
  const placed = await sys.db('auction_events').whereIn('auction_id', auctions).where({ type: 'bid.placed' });
  const placedSeq = new Map<string, number[]>();
  for (const e of placed) placedSeq.set(e.payload.bidId, [...(placedSeq.get(e.payload.bidId) ?? []), Number(e.seq)]);
  let duplicated = 0;
  for (const r of applied) {
    if ((acks.get(r.id) ?? 0) > 1 || (placedSeq.get(r.id)?.length ?? 0) > 1) duplicated++;
    if ((acks.get(r.id) ?? 0) === 0) t.fail(`bid ${r.id} applied without its bid.ack`);
    if (r.status === 'accepted' && JSON.stringify(placedSeq.get(r.id)) !== JSON.stringify([Number(r.seq)])) t.fail(`accepted bid ${r.id} (seq ${r.seq}) has bid.placed at ${JSON.stringify(placedSeq.get(r.id))}`);
    if (r.status === 'rejected' && placedSeq.has(r.id)) t.fail(`rejected bid ${r.id} has a bid.placed`);
  }
  let mismatched = 0;
  for (const id of auctions) {
    const seqs = (await sys.db('auction_events').where({ auction_id: id }).orderBy('seq')).map((e) => Number(e.seq));
    t.deepEqual(seqs, seqs.map((_, i) => i + 1), `seqs of ${id} gapless`);
    const r = await replay(sys, id);
    mismatched += r.mismatched.length;
    t.false(r.stateDiffers, `the replay of ${id} ends in its state`);
    const stream = auctionStream(sys.config.redis.prefix, id);
    // What the stream held when it caught up with the auction's seq, or at the last look.
    let last = { entries: [] as string[], seq: 0 };
    await waitFor(async () => {
      const a = await sys.db('auctions').where({ id }).first('seq');
      last = { entries: (await sys.redis.xrange(stream, '-', '+')).map(([entry]) => entry), seq: Number(a.seq) };
      return last.entries.length >= last.seq ? true : undefined;
    }, 20_000, `the stream of ${id} caught up`).catch(() => undefined);
    t.deepEqual(last.entries, Array.from({ length: last.seq }, (_, i) => `${i + 1}-0`), `the stream of ${id} holds its events once each, in order`);
  }
  return { lost, duplicated, mismatched, accepted: applied.filter((r) => r.status === 'accepted').length };
}
