/**
 * Auction persistence: one function per operation, each taking an explicit
 * knex or transaction. Row ↔ engine-state conversion lives here too, so the
 * worker and the edge read auctions the same way.
 */
import type { Knex } from 'knex';
import { BanPeriods, type AuctionState, type BidInput, type Proxy } from '../../auction/engine.js';
import { frameJson, type AuctionFrame } from '../../auction/frames.js';
import { bidPartition } from '../../queues/names.js';
import { withArrayLiterals } from '../arrays.js';
import { runPrepared, runQuery, type Queryable } from '../client.js';
import type { AuctionRow, AutobidRow, BidRow } from '../tables.js';

const num = (v: string | number) => Number(v);
/** Raw bindings that include arrays, sent as Postgres array literals (db/arrays.ts). */
const bindings = (...values: unknown[]) => withArrayLiterals(values) as Knex.RawBinding[];
const numOrNull = (v: string | number | null) => (v === null ? null : Number(v));

export interface NewAuction {
  sellerId: string;
  productId: string;
  title: string;
  startingPrice: number;
  reservePrice: number | null;
  bidIncrement: number | null;
  currency: string;
  durationSeconds: number;
  softCloseSeconds: number;
  startsAt: Date | null;
}

/** Inserts an auction and its receipt counter. */
export async function insertAuction(trx: Knex, a: NewAuction): Promise<AuctionRow> {
  const [row] = await trx<AuctionRow>('auctions')
    .insert({
      seller_id: a.sellerId,
      product_id: a.productId,
      title: a.title,
      status: 'scheduled',
      starting_price: String(a.startingPrice),
      reserve_price: a.reservePrice === null ? null : String(a.reservePrice),
      current_price: String(a.startingPrice),
      currency: a.currency,
      bid_increment: a.bidIncrement === null ? null : String(a.bidIncrement),
      duration_seconds: a.durationSeconds,
      soft_close_seconds: a.softCloseSeconds,
      starts_at: a.startsAt,
      ends_at: a.startsAt ? new Date(a.startsAt.getTime() + a.durationSeconds * 1000) : null,
    })
    .returning('*');
  await trx('auction_counters').insert({ auction_id: row!.id });
  return row!;
}

export async function findAuction(db: Knex, id: string): Promise<AuctionRow | undefined> {
  return db<AuctionRow>('auctions').where({ id }).first();
}

/**
 * Locks the auction row against other appliers. FOR NO KEY UPDATE, not FOR
 * UPDATE: bids being recorded take FOR KEY SHARE on it (their foreign key), and
 * recording must not wait for a drain to commit.
 */
export async function lockAuction(trx: Knex.Transaction, id: string): Promise<AuctionRow | undefined> {
  return trx<AuctionRow>('auctions').where({ id }).forNoKeyUpdate().first();
}

/**
 * Locks the receipt counter: no bid of the auction can be recorded until the
 * transaction ends, and every bid recorded before is committed and visible.
 */
export async function lockReceipts(trx: Knex.Transaction, auctionId: string): Promise<boolean> {
  return Boolean(await trx('auction_counters').where({ auction_id: auctionId }).forUpdate().first('auction_id'));
}

/**
 * Holds the transaction (at most a millisecond) until the database clock has
 * reached `at`, so that a bid recorded after the commit is received at or after it.
 */
export async function waitForDbTime(trx: Knex.Transaction, at: number): Promise<void> {
  // The difference in exact timestamp arithmetic: only the sub-millisecond rest is a float.
  await trx.raw("select pg_sleep(greatest(0, extract(epoch from (timestamptz 'epoch' + ?::bigint * interval '1 millisecond' - clock_timestamp()))))", [at]);
}

/** SQL: the database clock's next whole millisecond (receipt times are judged in whole, floored, milliseconds). */
export const NEXT_MS = "date_trunc('milliseconds', clock_timestamp()) + interval '1 millisecond'";

export async function dbNow(trx: Knex): Promise<number> {
  const { rows } = await trx.raw('select floor(extract(epoch from clock_timestamp()) * 1000)::bigint as now');
  return Number(rows[0].now);
}

export async function loadProxies(trx: Knex, auctionId: string): Promise<Proxy[]> {
  const rows = await trx<AutobidRow>('autobids').where({ auction_id: auctionId });
  return rows.map((r) => ({ userId: r.user_id, maxAmount: num(r.max_amount), placedOrder: num(r.placed_order), exhausted: r.exhausted }));
}

export function toState(row: AuctionRow, proxies: Proxy[]): AuctionState {
  return {
    id: row.id,
    sellerId: row.seller_id,
    status: row.status,
    startingPrice: num(row.starting_price),
    reservePrice: numOrNull(row.reserve_price),
    bidIncrement: numOrNull(row.bid_increment),
    currentPrice: num(row.current_price),
    leaderId: row.leader_id,
    leaderOrder: num(row.leader_order),
    bidCount: row.bid_count,
    endsAt: row.ends_at ? row.ends_at.getTime() : null,
    startsAt: row.status !== 'scheduled' && row.starts_at ? row.starts_at.getTime() : null,
    // hard_end without a cap: set by the version before end_cap, whose end was fixed at ends_at.
    endCap: row.end_cap ? row.end_cap.getTime() : row.hard_end && row.ends_at ? row.ends_at.getTime() : null,
    softCloseSeconds: row.soft_close_seconds,
    seq: num(row.seq),
    proxies,
  };
}

export async function saveState(trx: Knex, s: AuctionState, extra: { winnerId?: string | null; startsAt?: number; ended?: boolean } = {}): Promise<void> {
  await trx('auctions')
    .where({ id: s.id })
    .update({
      status: s.status,
      current_price: s.currentPrice,
      leader_id: s.leaderId,
      leader_order: s.leaderOrder,
      bid_count: s.bidCount,
      ends_at: s.endsAt === null ? null : new Date(s.endsAt),
      seq: s.seq,
      updated_at: trx.raw('clock_timestamp()'),
      ...(extra.winnerId !== undefined ? { winner_id: extra.winnerId } : {}),
      ...(extra.startsAt !== undefined ? { starts_at: new Date(extra.startsAt) } : {}),
      ...(extra.ended ? { ended_at: trx.raw('clock_timestamp()') } : {}),
    });
}

/** A queued bid as the engine takes it. */
export type QueuedBid = BidInput;

export interface Verdict {
  id: string;
  status: 'accepted' | 'rejected';
  reason?: string;
  seq?: number;
}

export async function insertEvents(trx: Knex, frames: AuctionFrame[]): Promise<void> {
  if (frames.length === 0) return;
  await trx('auction_events').insert(frames.map((f) => ({ auction_id: f.auctionId, seq: f.seq, type: f.type, payload: frameJson(f) })));
}

export interface UserEvent {
  userId: string;
  frame: { type: string; [k: string]: unknown };
}

/**
 * Private events as a batch's `events` (a JSON array of `{userId, event}`, in
 * order), built from each frame's one JSON (frameJson) without parsing it again.
 */
export function batchJson(events: UserEvent[]): string {
  return `[${events.map((e) => `{"userId":${JSON.stringify(e.userId)},"event":${frameJson(e.frame)}}`).join(',')}]`;
}

/**
 * Stores private events as one batch (one row, see the user_event_batches
 * migration); returns its id, or null for none. Its created_at is the clock at
 * the insert, not the transaction's start: the sweeper publishes batches older
 * than its grace period, and a transaction that had waited that long for its
 * locks (a close behind a round) made its batch look old at once, so the sweeper
 * could send it as the committer did.
 */
export async function insertUserEventBatch(trx: Knex, events: UserEvent[]): Promise<string | null> {
  if (events.length === 0) return null;
  const [row] = await trx('user_event_batches').insert({ events: batchJson(events), size: events.length, created_at: trx.raw('clock_timestamp()') }).returning('id');
  return String(row.id);
}

/** The winner's order, once per auction (ending twice creates nothing). */
export async function createWinnerOrder(trx: Knex, a: AuctionRow, winnerId: string, price: number): Promise<string> {
  const inserted = await trx('orders')
    .insert({
      buyer_id: winnerId,
      seller_id: a.seller_id,
      auction_id: a.id,
      product_id: a.product_id,
      total: price,
      currency: a.currency,
      items: JSON.stringify([{ productId: a.product_id, title: a.title, quantity: 1, price }]),
    })
    .onConflict('auction_id')
    .ignore()
    .returning('id');
  if (inserted[0]) return inserted[0].id as string;
  return (await trx('orders').where({ auction_id: a.id }).first('id')).id as string;
}

export interface IntakeItem {
  id: string;
  kind: 'bid' | 'autobid';
  bidderId: string;
  amount: number;
  idempotencyKey: string | null;
}

export async function findBidByIdempotencyKey(db: Knex, bidderId: string, key: string): Promise<BidRow | undefined> {
  return db<BidRow>('bids').where({ bidder_id: bidderId, idempotency_key: key }).first();
}

export async function findBid(db: Knex, id: string): Promise<BidRow | undefined> {
  return db<BidRow>('bids').where({ id }).first();
}

/** Newest first, keyset on (created_at, id), with optional status and seller filters. */
export async function listAuctions(
  db: Knex,
  filter: { status?: string; sellerId?: string },
  limit: number,
  after: { createdAt: string; id: string } | null,
): Promise<AuctionRow[]> {
  const q = db<AuctionRow>('auctions');
  if (filter.status) q.where({ status: filter.status as AuctionRow['status'] });
  if (filter.sellerId) q.where({ seller_id: filter.sellerId });
  if (after) q.whereRaw('(created_at, id) < (?::timestamptz, ?::uuid)', [after.createdAt, after.id]);
  return q.orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(limit);
}

/** Live auctions, soonest ending first, keyset on (ends_at, id). */
export async function listLiveAuctions(db: Knex, limit: number, after: { endsAt: string; id: string } | null): Promise<AuctionRow[]> {
  const q = db<AuctionRow>('auctions').where({ status: 'live' });
  if (after) q.whereRaw('(ends_at, id) > (?::timestamptz, ?::uuid)', [after.endsAt, after.id]);
  return q.orderBy([{ column: 'ends_at' }, { column: 'id' }]).limit(limit);
}

export interface HistoryEntry {
  id: string;
  bidderId: string;
  bidderName: string;
  amount: number;
  auto: boolean;
  createdAt: string;
  seq: number;
}

/** Placed bids (manual and auto), newest first, from the outbox; keyset on seq. */
export async function bidHistory(db: Knex, auctionId: string, limit: number, beforeSeq: number | null): Promise<HistoryEntry[]> {
  const q = db('auction_events').where({ auction_id: auctionId, type: 'bid.placed' });
  if (beforeSeq !== null) q.where('seq', '<', beforeSeq);
  const rows = await q.orderBy('seq', 'desc').limit(limit).select('seq', 'payload');
  return rows.map((r: { seq: string; payload: Record<string, unknown> }) => ({
    id: String(r.payload.bidId),
    bidderId: String(r.payload.bidderId),
    bidderName: String(r.payload.bidderName),
    amount: Number(r.payload.amount),
    auto: Boolean(r.payload.auto),
    createdAt: String(r.payload.at),
    seq: Number(r.seq),
  }));
}

/**
 * SQL for the bid partition an auction's queued bids are in (`auction` is an SQL
 * expression giving its id): the partition stored with its newest bid. Bids are
 * applied in receipt order, so when any is queued the newest is (and a change of
 * BID_PARTITIONS re-partitions the queued ones, see names.ts). With it, a look
 * for an auction's queued bids is a range of bids_queued_by_partition_idx
 * (partition, auction, receipt), not a walk of every queued bid.
 */
const queuedPartitionOf = (auction: string) => `(select partition from bids where auction_id = ${auction} order by receipt_no desc limit 1)`;

/** Whether `auctionId` has a bid queued (an index lookup, see queuedPartitionOf). */
export async function hasQueuedBids(trx: Knex, auctionId: string): Promise<boolean> {
  const row = await trx('bids')
    .where({ auction_id: auctionId, status: 'queued' })
    .whereRaw(`partition = ${queuedPartitionOf('?')}`, [auctionId])
    .first('id');
  return row !== undefined;
}

/**
 * The select list that reads a round's inputs for the auctions in `ids` (an SQL
 * expression giving a uuid[]): proxies (in the order placed, so that the engine,
 * which tells exhausted proxies in the order it holds them, gives a replay the
 * same private events), queued bids (receipt order), bans (every period, ended
 * ones too: a bid is judged by the bans at its receipt, see the engine's BanPeriods),
 * each as one json value; proxies and bids carry their users' names (the engine's
 * Context.names). `share` is the SQL for each
 * auction's share of the bids; the bindings are its own, then the limit (see
 * loadDrainInputs).
 *
 * Each auction's bids are read as a range of bids_queued_by_partition_idx in
 * its queued partition (queuedPartitionOf): a prefix of its queue, at most its
 * share. So a round reads what it applies, whatever waits in other auctions'
 * queues. (A read of `auction_id = any(ids) and status = 'queued'` let the
 * planner, with statistics taken while few bids were queued, walk every queued
 * bid of every auction: with 50,000 bids queued elsewhere, as after an outage,
 * a 7-bid round took 96 ms of Postgres CPU; now 1.7 ms.)
 */
const drainInputsSelect = (ids: string, share: string) => `
       (select coalesce(json_agg(json_build_object('auctionId', a.auction_id, 'userId', a.user_id, 'maxAmount', a.max_amount,
                'placedOrder', a.placed_order, 'exhausted', a.exhausted, 'name', u.name) order by a.placed_order), '[]')
          from autobids a join users u on u.id = a.user_id where a.auction_id = any(${ids})) as proxies,
       (select coalesce(json_agg(q order by q.auction_id, q.receipt_no), '[]') from (
          select b.id, b.auction_id, b.kind, b.bidder_id, u.name, b.amount, b.receipt_no,
                 floor(extract(epoch from b.received_at) * 1000)::bigint as received_ms
          from unnest(${ids}) as x(id)
          cross join lateral (
            select * from bids where partition = ${queuedPartitionOf('x.id')} and auction_id = x.id and status = 'queued'
            order by receipt_no limit (${share})::bigint
          ) b join users u on u.id = b.bidder_id
          order by b.auction_id, b.receipt_no limit ?) q) as bids,
       (select coalesce(json_agg(json_build_object('auctionId', auction_id, 'userId', user_id,
                'from', floor(extract(epoch from starts_at) * 1000)::bigint, 'until', floor(extract(epoch from expires_at) * 1000)::bigint)), '[]')
          from auction_bans where auction_id = any(${ids})) as bans`;

interface DrainInputsRow {
  proxies: { auctionId: string; userId: string; maxAmount: string | number; placedOrder: string | number; exhausted: boolean; name: string }[];
  bids: { id: string; auction_id: string; kind: 'bid' | 'autobid'; bidder_id: string; name: string; amount: string | number; receipt_no: string | number; received_ms: string | number }[];
  bans: { auctionId: string; userId: string; from: string | number; until: string | number | null }[];
}

export type DrainInputs = ReturnType<typeof parseDrainInputs>;

function parseDrainInputs(r: DrainInputsRow) {
  const proxies = new Map<string, Proxy[]>();
  const names = new Map<string, string>();
  for (const p of r.proxies) {
    const list = proxies.get(p.auctionId) ?? [];
    list.push({ userId: p.userId, maxAmount: num(p.maxAmount), placedOrder: num(p.placedOrder), exhausted: p.exhausted });
    proxies.set(p.auctionId, list);
    names.set(p.userId, p.name);
  }
  const bids = new Map<string, QueuedBid[]>();
  for (const b of r.bids) {
    const list = bids.get(b.auction_id) ?? [];
    list.push({ id: b.id, kind: b.kind, bidderId: b.bidder_id, bidderName: b.name, amount: num(b.amount), receivedAt: num(b.received_ms), receiptNo: num(b.receipt_no) });
    bids.set(b.auction_id, list);
    // An auto-bid of the round places a proxy that may bid for its owner later in it.
    names.set(b.bidder_id, b.name);
  }
  const bans = new Map<string, BanPeriods>();
  for (const b of r.bans) bans.set(b.auctionId, (bans.get(b.auctionId) ?? new BanPeriods()).add(b.userId, num(b.from), numOrNull(b.until)));
  return { proxies, bids, bans, names, total: r.bids.length };
}

const LOAD_DRAIN_INPUTS_SQL = `select ${drainInputsSelect('?::uuid[]', '?')}`;

/**
 * Proxies, queued bids (receipt order), bans and proxy owners' names of several
 * auctions, in one round trip. At most `limit` bids, and each auction's share at
 * most limit / auctions (a prefix of its queue), so a few deep queues cannot
 * take every round from the auctions that have waited longest.
 */
export async function loadDrainInputs(trx: Queryable, ids: string[], limit: number): Promise<DrainInputs> {
  const { rows } = await runQuery(trx, LOAD_DRAIN_INPUTS_SQL, [ids, ids, Math.ceil(limit / Math.max(1, ids.length)), limit, ids]);
  return parseDrainInputs(rows[0] as DrainInputsRow);
}

/** Every column of AuctionRow, listed (a prepared statement's result never uses `*`, see runPrepared). */
const AUCTION_COLUMNS = [
  'id', 'seller_id', 'product_id', 'title', 'status', 'starting_price', 'reserve_price', 'current_price', 'currency', 'bid_increment',
  'leader_id', 'leader_order', 'bid_count', 'duration_seconds', 'starts_at', 'ends_at', 'soft_close_seconds', 'seq', 'published_seq',
  'winner_id', 'ended_at', 'hard_end', 'end_cap', 'created_at', 'updated_at',
] as const satisfies readonly (keyof AuctionRow)[];
// Fails to compile when AuctionRow gains a column that the list above lacks.
const _everyAuctionColumn: Exclude<keyof AuctionRow, (typeof AUCTION_COLUMNS)[number]> extends never ? true : never = true;
void _everyAuctionColumn;

/** A round's statement around `look` (a select of auction_id; bindings: look's, then limit, limit). */
const lockStatement = (look: string) => `with look as materialized (
   ${look}
 ), l as materialized (
   select a.*, a.xmin::text as row_version from auctions a
   where a.id in (select auction_id from look) order by a.id for no key update
 ), k as materialized (
   select coalesce(array_agg(id order by id), '{}') as ids, count(*) as n from l
 ), i as materialized (
   select exists (select 1 from l join auctions a on a.id = l.id where a.xmin::text <> l.row_version) as changed,
          ${drainInputsSelect('(select ids from k)::uuid[]', 'ceil(?::numeric / greatest(1, (select n from k)))')}
 )
 select ${AUCTION_COLUMNS.map((c) => `l.${c}`).join(', ')}, i.changed, i.proxies, i.bids, i.bans
 from l left join i on l.id = (select ids[1] from k) order by l.id`;

/** Auctions of some partitions with queued bids, those waiting longest first, at most some (bindings: partitions, limit): the look and lookBacklog's list. */
const QUEUED_AUCTIONS = `from bids where partition = any(?::smallint[]) and status = 'queued'
    group by auction_id order by min(received_at) limit ?`;
const LOOK = `select auction_id ${QUEUED_AUCTIONS}`;
/**
 * The usual round's statement (bindings: partitions, auctions, limit, limit),
 * and a listed round's (bindings: ids, partitions, auctions, limit, limit): two
 * texts, so that the usual round's plan is not shaped by the other's.
 */
const LOCK_QUEUED_SQL = lockStatement(LOOK);
const LOCK_LISTED_SQL = lockStatement(`select unnest(?::uuid[]) as auction_id union (${LOOK})`);

export interface LockedRound {
  rows: AuctionRow[];
  inputs: DrainInputs;
  reread: boolean;
}

/**
 * A round's start, in one statement (inside the round's transaction): the
 * auctions `ids` (a drain working through a backlog's list, see lookBacklog) and
 * those a look finds (auctions of `partitions` with queued bids, those waiting
 * longest first, at most `auctions`), their locks (in id order, so every locker
 * of more than one auction takes them in the same order and none can deadlock)
 * and their inputs (as loadDrainInputs, at most `limit` bids). Three round trips
 * in one: on this path every round trip is a bid's latency. Listed auctions
 * whose queue has emptied are locked and read, and change nothing.
 *
 * The inputs are read in the statement's snapshot, taken before the locks were
 * granted. When a transaction that held one of those locks changed the auction
 * meanwhile (every write of a round, a close or a cancel updates the auction's
 * row), its locked row is a newer version than the snapshot's, and the inputs
 * are read again now that every lock is held (a fresh snapshot), so bids another
 * round has just applied are never applied twice. Returns the locked rows in id
 * order, and whether the inputs were read again.
 */
export async function lockRoundAuctions(trx: Queryable, ids: string[], partitions: number[], auctions: number, limit: number): Promise<LockedRound> {
  // One result row per locked auction; the inputs ride on the first.
  const { rows } = await (ids.length === 0
    ? runPrepared('blytz_lock_queued_auctions', (options) => runQuery(trx, LOCK_QUEUED_SQL, [partitions, auctions, limit, limit], options))
    : runPrepared('blytz_lock_listed_auctions', (options) => runQuery(trx, LOCK_LISTED_SQL, [ids, partitions, auctions, limit, limit], options)));
  if (rows.length === 0) return { rows: [], inputs: parseDrainInputs({ proxies: [], bids: [], bans: [] }), reread: false };
  const first = rows[0] as DrainInputsRow & { changed: boolean };
  const locked = (rows as (AuctionRow & Partial<DrainInputsRow> & { changed?: boolean })[]).map(
    ({ changed: _c, proxies: _p, bids: _b, bans: _n, ...row }) => row as AuctionRow,
  );
  if (!first.changed) return { rows: locked, inputs: parseDrainInputs(first), reread: false };
  return { rows: locked, inputs: await loadDrainInputs(trx, locked.map((a) => a.id), limit), reread: true };
}

/** lockRoundAuctions with a look only. */
export function lockQueuedAuctions(trx: Queryable, partitions: number[], auctions: number, limit: number): Promise<LockedRound> {
  return lockRoundAuctions(trx, [], partitions, auctions, limit);
}

/**
 * Up to `max` auctions of `partitions` with queued bids, those waiting longest
 * first, with their partition and oldest bid's receipt time (ms). No locks: a
 * list to work through over several rounds when there is a backlog, instead of
 * a look per round (a look reads every queued bid of its partitions).
 */
export async function lookBacklog(db: Queryable, partitions: number[], max: number): Promise<{ id: string; partition: number; oldest: number }[]> {
  const { rows } = await runQuery(
    db,
    `select auction_id, min(partition) as partition, floor(extract(epoch from min(received_at)) * 1000)::bigint as oldest ${QUEUED_AUCTIONS}`,
    [partitions, max],
  );
  return (rows as { auction_id: string; partition: number; oldest: string }[]).map((r) => ({ id: r.auction_id, partition: Number(r.partition), oldest: Number(r.oldest) }));
}

/** The proxies in `after` that differ from `before`. */
export function changedProxies(before: Proxy[], after: Proxy[]): Proxy[] {
  const old = new Map(before.map((p) => [p.userId, p]));
  return after.filter((p) => {
    const o = old.get(p.userId);
    return !o || o.maxAmount !== p.maxAmount || o.placedOrder !== p.placedOrder || o.exhausted !== p.exhausted;
  });
}

/** recordBids's statement. */
const RECORD_BIDS_SQL = `with v as (
   select * from unnest(?::uuid[], ?::uuid[], ?::uuid[], ?::text[], ?::bigint[], ?::int[], ?::text[], ?::smallint[])
     as v(id, auction_id, bidder_id, kind, amount, ord, idem, part)
 ), k as (
   select auction_id, count(*)::bigint as k from v group by auction_id
 ), l as materialized (
   select auction_id from auction_counters where auction_id = any(?::uuid[]) order by auction_id for update
 ), c as (
   update auction_counters ac set receipts = ac.receipts + k.k from k
   where ac.auction_id = k.auction_id and ac.auction_id = any(array(select auction_id from l))
   returning ac.auction_id, ac.receipts, k.k
 ), ins as (
   insert into bids (id, auction_id, bidder_id, kind, amount, receipt_no, received_at, idempotency_key, partition)
   select v.id, v.auction_id, v.bidder_id, v.kind, v.amount, c.receipts - c.k + v.ord, clock_timestamp(), v.idem, v.part
   from v join c on c.auction_id = v.auction_id
   order by v.auction_id, v.ord
   on conflict (bidder_id, idempotency_key) where idempotency_key is not null do nothing
   returning id, auction_id, receipt_no
 )
 select c.auction_id, coalesce(i.ids, '{}') as ids, coalesce(i.up_to, 0) as up_to
 from c left join (select auction_id, array_agg(id) as ids, max(receipt_no) as up_to from ins group by auction_id) i using (auction_id)`;

const DEADLOCK = '40P01';
/**
 * The counters' locks cannot deadlock (id order), but the inserts can: two
 * writes holding the same bidder's Idempotency-Keys in crossed orders (k1 then
 * k2, and k2 then k1, in different auctions) each wait for the other's insert.
 * Postgres aborts one; it is run again, whole (one statement: nothing of it was
 * kept), and then finds the other's keys and skips them. Without it every bid of
 * the aborted write, other users' included, got a 503.
 */
const DEADLOCK_ATTEMPTS = 3;

/**
 * Records the bids of one or several auctions in one autocommit statement (one
 * round trip): their receipt counters are locked in auction-id order first (so
 * two edges recording overlapping sets cannot deadlock), then bumped (locked
 * until commit, so the order of commits is the order of receipt numbers), and
 * the bids inserted with consecutive receipt numbers per auction, in the given
 * order, with the database clock as receipt time. Bids whose (bidder,
 * Idempotency-Key) exists already are not inserted. Returns, per auction found,
 * the inserted ids and highest receipt number; unknown auctions are absent.
 *
 * The order of the locks: `l` sorts and locks the counters, and the update
 * reads `l` whole through `array(...)`, an init plan run before the update's
 * scan starts, so every lock is taken in id order before any row is updated.
 */
export async function recordBids(db: Knex, groups: { auctionId: string; items: IntakeItem[] }[]): Promise<Map<string, { ids: Set<string>; upTo: number }>> {
  const rows = groups.flatMap((g) => g.items.map((item, i) => ({ g, item, ord: i + 1 })));
  const values = bindings(
    rows.map((r) => r.item.id),
    rows.map((r) => r.g.auctionId),
    rows.map((r) => r.item.bidderId),
    rows.map((r) => r.item.kind),
    rows.map((r) => r.item.amount),
    rows.map((r) => r.ord),
    rows.map((r) => r.item.idempotencyKey),
    rows.map((r) => bidPartition(r.g.auctionId)),
    groups.map((g) => g.auctionId),
  );
  const run = () => runPrepared('blytz_record_bids', (options) => db.raw(RECORD_BIDS_SQL, values).options(options), { retry: true });
  for (let attempt = 1; ; attempt++) {
    let found: { auction_id: string; ids: string[]; up_to: string }[];
    try {
      ({ rows: found } = await run());
    } catch (err) {
      if ((err as { code?: string }).code === DEADLOCK && attempt < DEADLOCK_ATTEMPTS) continue;
      throw err;
    }
    return new Map(found.map((r) => [r.auction_id, { ids: new Set(r.ids), upTo: Number(r.up_to) }]));
  }
}

/** writeRound's statement. */
const WRITE_ROUND_SQL = `with f as (
   update bids as b set status = v.status, reason = v.reason, seq = v.seq, applied_at = clock_timestamp()
   from unnest(?::uuid[], ?::text[], ?::text[], ?::bigint[], ?::text[]) as v(id, status, reason, seq, was)
   where b.id = any(array[v.id]) and b.status = any(array[v.was])
 ), p as (
   insert into autobids (auction_id, user_id, max_amount, placed_order, exhausted)
   select * from unnest(?::uuid[], ?::uuid[], ?::bigint[], ?::bigint[], ?::boolean[])
   on conflict (auction_id, user_id) do update
     set max_amount = excluded.max_amount, placed_order = excluded.placed_order, exhausted = excluded.exhausted, updated_at = now()
 ), e as (
   insert into auction_events (auction_id, seq, type, payload)
   select v.auction_id, v.seq, v.type, j.payload
   from unnest(?::uuid[], ?::bigint[], ?::text[]) with ordinality as v(auction_id, seq, type, n)
   join jsonb_array_elements(?::jsonb) with ordinality as j(payload, n) using (n)
 ), s as (
   update auctions as a set current_price = v.price, leader_id = v.leader, leader_order = v.leader_order, bid_count = v.bid_count,
          ends_at = to_timestamp(v.ends_ms / 1000.0), seq = v.seq, updated_at = clock_timestamp(),
          published_seq = least(v.seq, greatest(a.published_seq, v.pub))
   from unnest(?::uuid[], ?::bigint[], ?::uuid[], ?::bigint[], ?::int[], ?::bigint[], ?::bigint[], ?::bigint[])
        as v(id, price, leader, leader_order, bid_count, ends_ms, seq, pub)
   where a.id = v.id
 ), u as (
   insert into user_event_batches (events, size, created_at)
   select v.events, v.size, clock_timestamp() from (values (?::json, ?::int)) as v(events, size) where v.size > 0
   returning id
 ), m as (
   update user_event_batches set published_at = clock_timestamp() where id = any(?::bigint[]) and published_at is null
 )
 select (select id from u) as batch_id`;

/**
 * Everything a drain round writes, in one statement (one round trip): the
 * verdicts, changed proxies, public events, auctions' new state and the private
 * events as one batch (data-modifying CTEs all run, each to completion). Returns
 * the batch's id (null when there were no private events).
 *
 * Each verdict's bid is found by primary key, one lookup per verdict, whatever
 * the planner's statistics say. The conditions that tie a bid to its verdict
 * are written `x = any(array[v.x])`: the same rows as `x = v.x`, but conditions
 * Postgres can neither hash nor merge on, so the planner is left with a loop
 * over the verdicts and a primary-key lookup each (the other order would read
 * every bid once per verdict). With plain equalities a custom plan, on a table
 * of a few thousand to 24,000 bids, hash- or merge-joined a 300-verdict round
 * over a scan of the whole table (on `id`, or on `status = v.was`, where every
 * verdict has the same key).
 *
 * The write is a compare-and-set: a bid still in the state the round read it in
 * (`queued`, in `v.was`), checked against the verdicts rather than by a filter
 * on bids (`b.status = 'queued'`, or `applied_at is null`, tried). With
 * statistics taken while no bid was queued, such a filter made the planner
 * drive the update from the bids it expected to match (one) against every
 * verdict: in a catch-up after an outage, 48,000 queued bids × 2,000 verdicts,
 * 22 s for one round.
 *
 * `marks` are earlier rounds' publishing, recorded here rather than by a
 * statement of their own: `published_seq` of the auctions in `states` (not
 * lowered, not above the new seq), and private event batches' `published_at`.
 */
export async function writeRound(
  trx: Queryable,
  round: { verdicts: Verdict[]; proxies: { auctionId: string; proxy: Proxy }[]; frames: AuctionFrame[]; states: AuctionState[]; userEvents: UserEvent[] },
  marks: { published: Map<string, number>; userBatchIds: string[] } = { published: new Map(), userBatchIds: [] },
): Promise<string | null> {
  const { verdicts, proxies, frames, states, userEvents } = round;
  const values = bindings(
    verdicts.map((v) => v.id),
    verdicts.map((v) => v.status),
    verdicts.map((v) => v.reason ?? null),
    verdicts.map((v) => v.seq ?? null),
    verdicts.map(() => 'queued'),
    proxies.map((c) => c.auctionId),
    proxies.map((c) => c.proxy.userId),
    proxies.map((c) => c.proxy.maxAmount),
    proxies.map((c) => c.proxy.placedOrder),
    proxies.map((c) => c.proxy.exhausted),
    frames.map((f) => f.auctionId),
    frames.map((f) => f.seq),
    frames.map((f) => f.type),
    // One JSON array of the payloads, not a jsonb[] literal: the frames are JSON
    // already, and as array elements every quote in them would be escaped.
    `[${frames.map((f) => frameJson(f)).join(',')}]`,
    states.map((s) => s.id),
    states.map((s) => s.currentPrice),
    states.map((s) => s.leaderId),
    states.map((s) => s.leaderOrder),
    states.map((s) => s.bidCount),
    states.map((s) => s.endsAt),
    states.map((s) => s.seq),
    states.map((s) => marks.published.get(s.id) ?? 0),
    batchJson(userEvents),
    userEvents.length,
    marks.userBatchIds,
  );
  const { rows } = await runPrepared('blytz_write_round', (options) => runQuery(trx, WRITE_ROUND_SQL, values, options));
  const id = rows[0].batch_id as string | number | null;
  return id === null ? null : String(id);
}
