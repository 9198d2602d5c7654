/**
 * The same drain job run twice, at once, as by two worker processes (a job whose
 * lock ran out while its worker was busy, or a retry): separate contexts, so
 * separate round mergers, both waiting for the auction's row lock. No worker
 * runs in this file: only these drains apply anything.
 */
import test from 'ava';
import { registerUser, useSystem } from '../helpers/system.js';
import { bid, liveAuction, verdict, waitFor } from '../helpers/auctions.js';
import { audit, burst, recorded } from '../helpers/audit.js';
import { bidDrain } from '../../workers/handlers/bid-drain.js';
import { writeRound } from '../../db/operations/auctions.js';

const system = useSystem(test);

test.serial('the same drain job run twice at once, both waiting for the lock: every bid applied once, and a third run changes nothing', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const users = await Promise.all(Array.from({ length: 5 }, () => registerUser(sys)));
  const a = await liveAuction(sys, seller, { startingPrice: 100 });
  const hold = await sys.db.transaction();
  t.teardown(() => hold.rollback().catch(() => undefined));
  await hold('auctions').where({ id: a.id }).forNoKeyUpdate().first();
  const acked = await burst(t, sys, [a.id], users, 25, 100);
  t.is(await recorded(sys, acked), 25);
  const data = { auctionId: a.id, upTo: 25 };
  const runs = Promise.all([bidDrain({ ...sys.workerCtx }, data), bidDrain({ ...sys.workerCtx }, data)]);
  await waitFor(async () => {
    const { rows } = await sys.db.raw("select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and state = 'active'");
    return rows[0].n >= 2 ? true : undefined;
  }, 10_000, 'both drains waiting for the lock');
  await hold.commit();
  const applied = (await runs).map((r) => r.applied);
  t.is(applied[0]! + applied[1]!, 25, `applied ${applied.join(' + ')}`);
  const snapshot = async () => ({
    bids: await sys.db('bids').where({ auction_id: a.id }).orderBy('receipt_no').select('id', 'status', 'reason', 'seq'),
    events: await sys.db('auction_events').where({ auction_id: a.id }).orderBy('seq').select('seq', 'type'),
    auction: await sys.db('auctions').where({ id: a.id }).first('seq', 'current_price', 'leader_id', 'bid_count'),
  });
  const once = await snapshot();
  t.is((await bidDrain({ ...sys.workerCtx }, data)).applied, 0);
  t.deepEqual(await snapshot(), once);
  const r = await audit(t, sys, acked, [a.id], 5_000);
  t.is(r.lost, 0);
  t.is(r.duplicated, 0);
  t.is(r.mismatched, 0);
  t.log(`acknowledged ${acked.length}, accepted ${r.accepted}, lost ${r.lost}, duplicated ${r.duplicated}, replay mismatches ${r.mismatched}`);
});

test.serial('a verdict written for a bid that is no longer queued changes nothing (the write is a compare-and-set)', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await liveAuction(sys, seller, { startingPrice: 100 });
  const placed = await bid(sys, u, a.id, 100);
  await bidDrain(sys.workerCtx, { auctionId: a.id, upTo: 0 });
  const before = await verdict(sys, u, placed.body.bidId);
  t.is(before.status, 'accepted');
  // A second writer that read the bid while it was queued, writing its own verdict.
  await sys.db.transaction((trx) =>
    writeRound(trx, { verdicts: [{ id: placed.body.bidId, status: 'rejected', reason: 'bid_too_low' }], proxies: [], frames: [], states: [], userEvents: [] }),
  );
  const row = await sys.db('bids').where({ id: placed.body.bidId }).first();
  t.deepEqual([row.status, row.reason, Number(row.seq)], ['accepted', null, before.seq]);
});
