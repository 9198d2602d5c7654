/**
 * Applying bids. A drain job wakes its partition: the handler finds every
 * auction of the partition with queued bids and applies them in one transaction
 * per round (shared with the other partitions draining in this process, see
 * RoundMerger): find those auctions, lock them (in id order) and read their
 * queued bids in receipt order (committed bids are a gap-free prefix, see
 * recordBids), all in one statement (lockRoundAuctions), run each auction's
 * bids through the pure engine, and write
 * verdicts, states, proxies and the outbox (public events with their seq, private
 * events) in one statement. A drain that runs twice, or two at once, change
 * nothing the second time: the row locks serialize them and a bid leaves `queued` once.
 */
import type { Knex } from 'knex';
import { rawTransaction, type Queryable } from '../../db/client.js';
import { applyBid, closeAuction, type AuctionState } from '../../auction/engine.js';
import { privateFrame, publicFrame, type AuctionFrame } from '../../auction/frames.js';
import {
  changedProxies,
  createWinnerOrder,
  dbNow,
  insertEvents,
  insertUserEventBatch,
  loadDrainInputs,
  lockAuction,
  lockReceipts,
  lockRoundAuctions,
  lookBacklog,
  saveState,
  toState,
  writeRound,
  type DrainInputs,
  type Verdict,
} from '../../db/operations/auctions.js';
import type { AuctionRow } from '../../db/tables.js';
import type { Proxy } from '../../auction/engine.js';
import { appendEvents, markPublished, type Marks } from '../../lib/publisher.js';
import type { JobPayloads } from '../../queues/jobs.js';
import { bidPartition, bidQueueFor } from '../../queues/names.js';
import type { WorkerContext } from '../context.js';

/** Bids applied per transaction at most (the rest go in the next round). */
const BATCH = 2_000;
/** Auctions locked per transaction at most. */
const AUCTIONS_PER_ROUND = 200;
/** Rounds per drain job at most. */
const MAX_ROUNDS = 100;
/** Auctions in a backlog's list at most (see Backlog). */
const BACKLOG_MAX = 5_000;
/**
 * A backlog's list is looked again (in the background) after this long, or ten
 * times as long as its look took, whichever is longer (a look's cost grows with
 * the backlog: ~550 ms with 1.5 million bids queued), and not used past
 * BACKLOG_EXPIRE_MS.
 */
const BACKLOG_REFRESH_MS = 2_000;
const BACKLOG_EXPIRE_MS = 10_000;
/**
 * Settings tests change. `slowLookMs`: a full round starts a list only when its
 * statement took at least this long (the look is then what costs: ~120 ms with
 * 200,000 bids queued, ~700 ms with 1.5 million). Under plain overload the look
 * is cheap, and rounds that look found the auctions waiting longest at that
 * moment: lists there measured ~10% fewer bids/s over 1,000 auctions at 5,000/s.
 */
export const drainTuning = {
  slowLookMs: 100,
  /**
   * How long a round's publishing may wait to be recorded by a later round of the
   * same auctions before a statement of its own records it (RoundMerger).
   */
  marksWaitMs: 100,
};
/** Private event batches waiting for their mark at most; past it they are left to the sweeper (sent again: at least once). */
const MARKS_MAX = 10_000;

export interface Outbox {
  frames: AuctionFrame[];
  user: { userId: string; frame: { type: string; [k: string]: unknown } }[];
}

export interface DrainResult {
  applied: number;
  verdicts: Verdict[];
  receivedAt: number[];
  accepted: number;
  outbox: Outbox;
  /** The batch `outbox.user` was stored as (null: no private events). */
  userBatchId: string | null;
  /** The batch was full: there may be more queued. */
  more: boolean;
  states: Map<string, AuctionState>;
  /** Bids applied per auction. */
  appliedBy: Map<string, number>;
}

const NO_BANS: ReadonlySet<string> = new Set();

/** Runs the queued bids of the locked `rows` (`inputs`: theirs, read under the locks) through the engine; writes nothing. */
function applyLocked(rows: AuctionRow[], inputs: DrainInputs) {
  const outbox: Outbox = { frames: [], user: [] };
  const verdicts: Verdict[] = [];
  const receivedAt: number[] = [];
  const states = new Map<string, AuctionState>();
  const touched: AuctionState[] = [];
  const proxyChanges: { auctionId: string; proxy: Proxy }[] = [];
  let accepted = 0;
  for (const row of rows) {
    const before = inputs.proxies.get(row.id) ?? [];
    let state = toState(row, before);
    const bids = inputs.bids.get(row.id) ?? [];
    const banned = inputs.bans.get(row.id) ?? NO_BANS;
    for (const bid of bids) {
      const r = applyBid(state, bid, { banned, names: inputs.names });
      state = r.state;
      verdicts.push(r.verdict);
      receivedAt.push(bid.receivedAt);
      if (r.verdict.status === 'accepted') accepted++;
      for (const e of r.events) outbox.frames.push(publicFrame(row.id, e));
      for (const e of r.private) outbox.user.push(privateFrame(row.id, e));
    }
    states.set(row.id, state);
    if (bids.length > 0) {
      touched.push(state);
      for (const proxy of changedProxies(before, state.proxies)) proxyChanges.push({ auctionId: row.id, proxy });
    }
  }
  const appliedBy = new Map([...inputs.bids].map(([id, list]) => [id, list.length]));
  return { outbox, verdicts, receivedAt, states, touched, proxyChanges, accepted, appliedBy, more: inputs.total === BATCH };
}

/** Writes a round's verdicts, proxies, events and states (and `userEvents`, and `marks`); returns the private events' batch id. */
function writeApplied(trx: Queryable, a: ReturnType<typeof applyLocked>, userEvents: Outbox['user'], marks?: Marks) {
  return writeRound(
    trx,
    { verdicts: a.verdicts, proxies: a.proxyChanges, frames: a.outbox.frames, states: a.touched, userEvents },
    marks && { published: marks.auctions, userBatchIds: marks.userBatchIds },
  );
}

/**
 * Applies the queued bids of the auctions `locked` (lockRoundAuctions) in their
 * transaction, recording `marks` (earlier rounds' publishing) with them. Returns
 * also the auctions whose marks were recorded: those the round changed.
 */
export async function applyQueuedMany(trx: Queryable, locked: { rows: AuctionRow[]; inputs: DrainInputs }, marks?: Marks): Promise<DrainResult & { marked: Set<string> }> {
  const a = applyLocked(locked.rows, locked.inputs);
  const userBatchId = await writeApplied(trx, a, a.outbox.user, marks);
  const marked = new Set(a.touched.map((s) => s.id));
  return { applied: a.verdicts.length, verdicts: a.verdicts, receivedAt: a.receivedAt, accepted: a.accepted, outbox: a.outbox, userBatchId, more: a.more, states: a.states, appliedBy: a.appliedBy, marked };
}

/**
 * Applies queued bids of the locked auction `row` (inside `trx`). With `close`,
 * it also ends the auction if its end has passed. Used by close.
 */
export async function applyQueued(trx: Knex.Transaction, row: AuctionRow, close: boolean): Promise<DrainResult & { ended: boolean; state: AuctionState }> {
  const a = applyLocked([row], await loadDrainInputs(trx, [row.id], BATCH));
  await writeApplied(trx, a, []);
  let state = a.states.get(row.id)!;
  let ended = false;
  if (close && !a.more) {
    const closed = closeAuction(state, await dbNow(trx));
    if (closed) {
      state = closed.state;
      ended = true;
      const frame = publicFrame(row.id, closed.event);
      a.outbox.frames.push(frame);
      await insertEvents(trx, [frame]);
      if (closed.winnerId) {
        const orderId = await createWinnerOrder(trx, row, closed.winnerId, state.currentPrice);
        a.outbox.user.push({ userId: closed.winnerId, frame: { type: 'auction.won', auctionId: row.id, orderId } });
      }
      await saveState(trx, state, { winnerId: closed.winnerId, ended: true });
    }
  }
  const userBatchId = await insertUserEventBatch(trx, a.outbox.user);
  return {
    applied: a.verdicts.length,
    verdicts: a.verdicts,
    receivedAt: a.receivedAt,
    accepted: a.accepted,
    outbox: a.outbox,
    userBatchId,
    more: a.more,
    states: a.states,
    appliedBy: a.appliedBy,
    ended,
    state,
  };
}

/**
 * Appends a committed drain's outbox to Redis and returns what to mark published.
 * Failures are logged, never thrown: what was not appended stays unmarked, and
 * the sweeper publishes it.
 */
async function appendOutbox(ctx: WorkerContext, outbox: Outbox, userBatchId: string | null): Promise<Marks> {
  try {
    const { marks, failures } = await appendEvents(
      ctx.db,
      ctx.redis,
      ctx.config,
      outbox.frames.map((f) => ({ auctionId: f.auctionId, seq: f.seq, frame: f })),
      userBatchId === null ? [] : [{ id: userBatchId, events: outbox.user }],
    );
    for (const err of failures) ctx.logger.warn({ err: err.message }, 'publish failed; the sweeper will retry');
    return marks;
  } catch (err) {
    ctx.logger.warn({ err: (err as Error).message }, 'publish failed; the sweeper will retry');
    return { auctions: new Map(), userBatchIds: [] };
  }
}

/** Publishes a committed drain's outbox and marks it published; failures leave it to the sweeper. */
export async function publishOutbox(ctx: WorkerContext, outbox: Outbox, userBatchId: string | null): Promise<void> {
  const marks = await appendOutbox(ctx, outbox, userBatchId);
  try {
    await markPublished(ctx.db, marks);
  } catch (err) {
    ctx.logger.warn({ err: (err as Error).message }, 'publish marks not recorded; the sweeper will publish again');
  }
}

/** What a drain learns from one round. */
interface RoundShare {
  /** Bids of this partition applied in the round; null when it had none queued. */
  applied: number | null;
  /** Settles when the round's events are published (never rejects). */
  published: Promise<void>;
}

/**
 * A backlog's auctions, per partition, to work through without a look per round.
 *
 * A round's look groups every queued bid of its partitions, so its cost grows
 * with the backlog: after an outage with 1.5 million bids queued over 1,000
 * auctions it took ~700 ms a round (2,000 bids), and the drains caught up at
 * ~2,200 bids/s, less than a hot auction's live rate. So when a round is full
 * (its look found AUCTIONS_PER_ROUND auctions, or it read BATCH bids) and its
 * statement was slow (drainTuning.slowLookMs), one look
 * lists up to BACKLOG_MAX auctions, those waiting longest first, and the next
 * rounds take their auctions from the list instead of looking: the oldest
 * first, and an auction that may have more goes to the back of its list (a
 * queue's turn, as a look would give it). A round still looks at the partitions
 * with nothing listed. The list is looked again in the background (see
 * BACKLOG_REFRESH_MS), so auctions that queued bids since are not left waiting
 * long. The list only chooses which auctions a round locks: the lock and the
 * read are those of every round, so an auction listed twice or already drained
 * changes nothing. Measured with 1.5 million bids queued over 1,000 auctions:
 * ~5,700–7,000 bids/s caught up, against ~1,700–2,200 with a look per round.
 */
export class Backlog {
  /** Per partition: its listed auctions (by `oldest`, ascending), when it was listed, and when to list it again. */
  private readonly lists = new Map<number, { entries: { id: string; oldest: number }[]; filledAt: number; refreshMs: number }>();
  /** Requeued auctions sort after every listed one, in the order they were requeued (no clock involved). */
  private requeued = 0;

  /** Whether a partition of `partitions` has no list, or one old enough to be looked again. */
  stale(partitions: number[], now: number): boolean {
    return partitions.some((p) => {
      const list = this.lists.get(p);
      return !list || now - list.filledAt >= list.refreshMs;
    });
  }

  /** Replaces the lists of `partitions` with `entries` (waiting longest first), looked in `tookMs`. */
  fill(partitions: number[], entries: { id: string; partition: number; oldest: number }[], now: number, tookMs: number): void {
    const refreshMs = Math.min(BACKLOG_EXPIRE_MS / 2, Math.max(BACKLOG_REFRESH_MS, 10 * tookMs));
    for (const p of partitions) this.lists.set(p, { entries: [], filledAt: now, refreshMs });
    for (const e of entries) this.lists.get(e.partition)?.entries.push({ id: e.id, oldest: e.oldest });
  }

  /**
   * Takes up to `n` auctions of `partitions` off the lists, those waiting longest
   * first; `uncovered` are the partitions with nothing listed, for the round to look at.
   */
  take(partitions: number[], n: number, now: number): { ids: string[]; uncovered: number[] } {
    const lists = partitions.map((p) => {
      const list = this.lists.get(p);
      if (list && now - list.filledAt < BACKLOG_EXPIRE_MS) return list.entries;
      this.lists.delete(p);
      return [];
    });
    const heads = lists.map(() => 0);
    const ids: string[] = [];
    while (ids.length < n) {
      let best = -1;
      for (let i = 0; i < lists.length; i++) {
        const e = lists[i]![heads[i]!];
        if (e && (best < 0 || e.oldest < lists[best]![heads[best]!]!.oldest)) best = i;
      }
      if (best < 0) break;
      ids.push(lists[best]![heads[best]!++]!.id);
    }
    lists.forEach((l, i) => l.splice(0, heads[i]));
    return { ids, uncovered: partitions.filter((_, i) => lists[i]!.length === 0 && heads[i] === 0) };
  }

  /** Puts auctions that may have more queued at the back of their partitions' lists. */
  requeue(ids: string[]): void {
    for (const id of ids) this.lists.get(bidPartition(id))?.entries.push({ id, oldest: REQUEUED + ++this.requeued });
  }
}

/** Above every receipt time in ms (year 2255 and on): requeued auctions sort last. */
const REQUEUED = 2 ** 53 / 1024;

/**
 * Rounds of the drains in one worker process, merged. A drain asks for a round
 * for its partition; the drains that ask while a round runs share the next one:
 * one look and one transaction for all their partitions, and one publish. With
 * one partition busy nothing changes; with many, rounds carry more bids each and
 * there are fewer of them (a round costs about six round trips, whatever its
 * size). A partition is drained by one job at a time (global concurrency 1), so
 * it is in at most one round at a time, and its auctions' order is kept. Rounds
 * publish in order through one chain, so every auction's stream stays in seq order.
 */
class RoundMerger {
  private waiting = new Map<number, Waiter[]>();
  private running = false;
  private published: Promise<void> = Promise.resolve();
  /**
   * Publishing not yet recorded in Postgres: each auction's last seq in its
   * stream, and the private events sent. The next round of an auction records
   * its mark in the round's own statement (a hot auction is in every round); what
   * no round takes within drainTuning.marksWaitMs gets a statement of its own. A mark is in
   * one statement at a time: it leaves these while one carries it and comes back
   * if that statement fails. Lost marks (a crash) only mean the sweeper publishes
   * again, which the ordered append skips and private events allow.
   */
  private marks: Marks = { auctions: new Map(), userBatchIds: [] };
  private markTimer: NodeJS.Timeout | null = null;
  /** Failed mark statements in a row (Postgres down): the wait doubles with each, up to 5 s. */
  private markFailures = 0;
  private get markDelay(): number {
    const wait = drainTuning.marksWaitMs;
    return this.markFailures === 0 ? wait : Math.max(wait, Math.min(wait * 2 ** this.markFailures, 5_000));
  }
  private readonly backlog = new Backlog();
  /** The backlog's look in flight, if any. */
  private looking: Promise<void> | null = null;

  constructor(private readonly ctx: WorkerContext) {}

  /** Lists the backlog of `partitions` in the background (one look at a time; a failure only means rounds look for themselves). */
  private lookBacklog(partitions: number[]): void {
    if (this.looking) return;
    const start = Date.now();
    this.looking = lookBacklog(this.ctx.db, partitions, BACKLOG_MAX)
      .then((entries) => {
        this.backlog.fill(partitions, entries, Date.now(), Date.now() - start);
        this.ctx.logger.info({ partitions, auctions: entries.length, ms: Date.now() - start }, 'working through a bid backlog: auctions listed');
      })
      .catch((err: unknown) => this.ctx.logger.warn({ err: (err as Error).message }, 'backlog not listed; rounds look for themselves'))
      .finally(() => {
        this.looking = null;
      });
  }

  /** Takes the pending marks of `auctionIds` (all when omitted) and every pending private event batch's. */
  private takeMarks(auctionIds?: string[]): Marks {
    const taken: Marks = { auctions: new Map(), userBatchIds: this.marks.userBatchIds };
    this.marks.userBatchIds = [];
    for (const id of auctionIds ?? [...this.marks.auctions.keys()]) {
      const seq = this.marks.auctions.get(id);
      if (seq === undefined) continue;
      taken.auctions.set(id, seq);
      this.marks.auctions.delete(id);
    }
    return taken;
  }

  /** Puts marks back (new ones, or ones whose statement failed or did not record them). */
  private keepMarks(m: Marks, auctionIds: Iterable<string> = m.auctions.keys()): void {
    for (const id of auctionIds) {
      const seq = m.auctions.get(id)!;
      if ((this.marks.auctions.get(id) ?? 0) < seq) this.marks.auctions.set(id, seq);
    }
    if (this.marks.userBatchIds.length + m.userBatchIds.length <= MARKS_MAX) this.marks.userBatchIds.push(...m.userBatchIds);
    if (!this.markTimer && (this.marks.auctions.size > 0 || this.marks.userBatchIds.length > 0)) {
      this.markTimer = setTimeout(() => {
        this.markTimer = null;
        this.startFlush();
      }, this.markDelay);
      this.markTimer.unref();
    }
  }

  /**
   * A round committed, so Postgres answers again: marks held back by failed
   * flushes (their wait doubled up to 5 s) go now, before the sweeper's grace
   * period would have it publish them again.
   */
  private answered(): void {
    if (this.markFailures === 0) return;
    this.markFailures = 0;
    if (this.markTimer) {
      clearTimeout(this.markTimer);
      this.markTimer = null;
      this.startFlush();
    }
  }

  /** Settles when the flushes started so far have; never rejects. */
  private flushing: Promise<void> = Promise.resolve();

  /**
   * Records every pending mark with a statement of its own (in the background:
   * a drain that ends must not keep its partition's next drain waiting for it).
   */
  startFlush(): void {
    this.flushing = this.flushing.then(() => this.flushMarks());
  }

  /** Records what is pending now and waits for every flush started (shutdown). */
  async settle(): Promise<void> {
    this.startFlush();
    await this.flushing;
    await this.looking;
  }

  /** Records every pending mark with a statement of its own. */
  async flushMarks(): Promise<void> {
    const m = this.takeMarks();
    if (m.auctions.size === 0 && m.userBatchIds.length === 0) return;
    try {
      await markPublished(this.ctx.db, m);
      this.markFailures = 0;
    } catch (err) {
      this.ctx.logger.warn({ err: (err as Error).message }, 'publish marks not recorded; will try again');
      this.markFailures = Math.min(this.markFailures + 1, 16);
      this.keepMarks(m);
    }
  }

  round(partition: number): Promise<RoundShare> {
    return new Promise((resolve, reject) => {
      // Two drains of one partition in one process (a lock that lapsed) share a round.
      const list = this.waiting.get(partition) ?? [];
      list.push({ resolve, reject });
      this.waiting.set(partition, list);
      if (!this.running) void this.run();
    });
  }

  private async run(): Promise<void> {
    this.running = true;
    while (this.waiting.size > 0) {
      const batch = this.waiting;
      this.waiting = new Map();
      try {
        await this.runRound(batch);
      } catch (err) {
        if (batch.size === 1) {
          // The round's transaction failed: its drains fail (and retry as jobs).
          for (const list of batch.values()) for (const w of list) w.reject(err);
          continue;
        }
        // One partition's failure (a bad auction, say) must not stop the others:
        // each partition again, alone; only those that fail again fail.
        for (const [partition, list] of batch) {
          try {
            await this.runRound(new Map([[partition, list]]));
          } catch (alone) {
            for (const w of list) w.reject(alone);
          }
        }
      }
    }
    this.running = false;
  }

  private async runRound(batch: Map<number, Waiter[]>): Promise<void> {
    const { ctx } = this;
    const partitions = [...batch.keys()];
    // Auctions from the backlog's list, if there is one, and a look at the partitions it leaves out.
    const { ids: listed, uncovered } = this.backlog.take(partitions, AUCTIONS_PER_ROUND, Date.now());
    const lookFor = uncovered.length === 0 ? 0 : Math.max(AUCTIONS_PER_ROUND - listed.length, AUCTIONS_PER_ROUND / 4);
    // Marks taken for the round's statement: put back if its transaction fails.
    let taken: Marks | undefined;
    let lookMs = 0;
    let round: { ids: string[]; done: { result: Awaited<ReturnType<typeof applyQueuedMany>>; carried: Marks } | null };
    try {
      // The look, the locks and the reads are one statement, in the transaction.
      round = await rawTransaction(ctx.db, async (trx) => {
        const started = performance.now();
        const locked = await lockRoundAuctions(trx, listed, uncovered, lookFor, BATCH);
        lookMs = performance.now() - started;
        const ids = locked.rows.map((r) => r.id);
        if (ids.length === 0) return { ids, done: null };
        const carried = (taken = this.takeMarks(ids));
        return { ids, done: { result: await applyQueuedMany(trx, locked, carried), carried } };
      });
    } catch (err) {
      if (taken) this.keepMarks(taken);
      // The listed auctions go back on the list.
      this.backlog.requeue(listed);
      throw err;
    }
    this.answered();
    const { ids, done } = round;
    const onList = new Set(listed);
    ctx.metrics?.rounds.inc({ choice: ids.some((id) => onList.has(id)) ? 'list' : 'look' });
    // The look was cut at its limit, or the round read as many bids as it may: a backlog.
    const full = (lookFor > 0 && ids.filter((id) => !onList.has(id)).length === lookFor) || done?.result.more === true;
    if (done && listed.length > 0) {
      // Listed auctions that may have more (they got their whole share) go to the back.
      const share = Math.ceil(BATCH / ids.length);
      const again = ids.filter((id) => onList.has(id) && (done.result.more || done.result.appliedBy.get(id) === share));
      this.backlog.requeue(again);
    }
    // A full round whose look was slow, with nothing listed: list the backlog now
    // (the next round waits for it, below). Working from a list: list again when it is old.
    const backlogged = full && lookMs >= drainTuning.slowLookMs;
    if ((backlogged && listed.length === 0) || ((backlogged || listed.length > 0) && this.backlog.stale(partitions, Date.now()))) this.lookBacklog(partitions);
    // Partitions a cut look may have left out, and those the list stands for, come
    // again (0); a partition the round looked at in full with nothing queued is done (null).
    const absent = (p: number) => (full || !uncovered.includes(p) ? 0 : null);
    const applied = new Map<number, number>();
    // Even a round with nothing to apply answers with the chain's tail: a drain
    // waits for the publishing of every round it took part in.
    let published = this.published;
    if (done) {
      const { result, carried } = done;
      // Committed: nothing below may throw before its events are on their way.
      // Marks of auctions the round locked but did not change were not written.
      this.keepMarks({ auctions: carried.auctions, userBatchIds: [] }, [...carried.auctions.keys()].filter((id) => !result.marked.has(id)));
      // Its marks wait for a later round (or flushMarks).
      published = this.published = this.published.then(async () => this.keepMarks(await appendOutbox(ctx, result.outbox, result.userBatchId)));
      for (const id of ids) {
        const p = bidPartition(id);
        applied.set(p, (applied.get(p) ?? 0) + (result.appliedBy.get(id) ?? 0));
      }
      try {
        ctx.metrics?.observeDrain(result.verdicts, result.receivedAt);
      } catch (err) {
        ctx.logger.warn({ err: (err as Error).message }, 'drain metrics not recorded');
      }
    }
    for (const [partition, list] of batch) {
      for (const w of list) w.resolve({ applied: applied.get(partition) ?? absent(partition), published });
    }
    // The next round waits for that list rather than look again, which would take as long.
    if (backlogged && listed.length === 0 && this.looking) await this.looking;
  }
}

interface Waiter {
  resolve: (share: RoundShare) => void;
  reject: (err: unknown) => void;
}

const mergers = new WeakMap<WorkerContext, RoundMerger>();

/** Drains the partition of `data.auctionId`: every auction there with queued bids. */
export async function bidDrain(ctx: WorkerContext, data: JobPayloads['bid.drain']): Promise<{ applied: number }> {
  const partition = bidPartition(data.auctionId);
  // Before the first look: a bid committed after this point wakes a new drain.
  // If Redis refuses, the job fails and is retried (a drain that went on with
  // the flag up could leave bids committed after its last look without a job).
  await ctx.producer.clearWake(bidQueueFor(data.auctionId));
  let merger = mergers.get(ctx);
  if (!merger) mergers.set(ctx, (merger = new RoundMerger(ctx)));
  let total = 0;
  let published: Promise<void> = Promise.resolve();
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const share = await merger.round(partition);
    published = share.published;
    if (share.applied === null) break;
    total += share.applied;
    if (ctx.stopping?.aborted) {
      // The process is stopping: hand over between rounds to a fresh job (another
      // process takes it; failing that, the sweeper finds the bids still queued).
      await ctx.producer.enqueue('bid.drain', { ...data, retry: Date.now() }).catch((err: unknown) => {
        ctx.logger.warn({ err: (err as Error).message }, 'drain not handed over at shutdown; the sweeper will pick the bids up');
      });
      break;
    }
    if (round === MAX_ROUNDS - 1) {
      // Still busy after the last round: hand over to a fresh job (other partitions get a turn).
      await ctx.producer.enqueue('bid.drain', { ...data, retry: Date.now() });
    }
  }
  await published;
  // This drain's last marks wait for the next round of their auctions, or for
  // drainTuning.marksWaitMs, whichever comes first (keepMarks): a statement of their own
  // after every drain cost a bid at low load one more statement and commit.
  return { applied: total };
}

/** Records the publish marks still pending in this process and waits for them (at shutdown, after the drains have stopped). */
export async function settleDrains(ctx: WorkerContext): Promise<void> {
  await mergers.get(ctx)?.settle();
}

/** Ends the auction if due, after applying every bid recorded before now. */
export async function closeIfDue(ctx: WorkerContext, auctionId: string): Promise<{ ended: boolean; endsAt: number | null; status: string } | null> {
  for (;;) {
    const result = await ctx.db.transaction(async (trx) => {
      // The receipt lock first: every bid recorded so far is committed and visible,
      // and none can be recorded until this transaction ends.
      if (!(await lockReceipts(trx, auctionId))) return null;
      const row = await lockAuction(trx, auctionId);
      if (!row) return null;
      return applyQueued(trx, row, true);
    });
    if (!result) return null;
    ctx.metrics?.observeDrain(result.verdicts, result.receivedAt);
    await publishOutbox(ctx, result.outbox, result.userBatchId);
    if (!result.more) return { ended: result.ended, endsAt: result.state.endsAt, status: result.state.status };
  }
}
