/**
 * The backlog's list (workers/handlers/bid-drain.ts, Backlog): which auctions a
 * round takes when a backlog is worked through without a look per round.
 */
import test from 'ava';
import { Backlog } from '../../workers/handlers/bid-drain.js';
import { bidPartition } from '../../queues/names.js';

/** Auction ids (UUID-shaped) with their partition, `n` per partition wanted. */
function auctionsIn(partitions: number[], n: number): Map<number, string[]> {
  const out = new Map(partitions.map((p) => [p, [] as string[]]));
  for (let i = 0; [...out.values()].some((l) => l.length < n); i++) {
    const id = `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
    const list = out.get(bidPartition(id));
    if (list && list.length < n) list.push(id);
  }
  return out;
}

test('a round takes the listed auctions waiting longest first, across its partitions only, and looks at those with nothing listed', (t) => {
  const ids = auctionsIn([0, 1, 2, 3], 3);
  const [a, b, c] = [ids.get(0)!, ids.get(1)!, ids.get(2)!];
  const backlog = new Backlog();
  t.true(backlog.stale([0], 0), 'no list yet');
  t.deepEqual(backlog.take([0, 1], 10, 0), { ids: [], uncovered: [0, 1] }, 'without a list, every partition is looked at');
  // Listed at t=1000 for partitions 0..3; partition 3 had nothing queued.
  backlog.fill([0, 1, 2, 3], [
    { id: a[0]!, partition: 0, oldest: 10 },
    { id: b[0]!, partition: 1, oldest: 20 },
    { id: a[1]!, partition: 0, oldest: 30 },
    { id: c[0]!, partition: 2, oldest: 5 },
    { id: b[1]!, partition: 1, oldest: 40 },
  ], 1_000, 50);
  t.false(backlog.stale([0, 1, 2, 3], 1_000));
  t.true(backlog.stale([0, 4], 1_000), 'partition 4 has no list');
  // Partition 2's auction is the oldest, but this round is for partitions 0, 1 and 3.
  t.deepEqual(backlog.take([0, 1, 3], 3, 1_000), { ids: [a[0], b[0], a[1]], uncovered: [3] });
  // A taken auction that may have more goes to the back of its list.
  backlog.requeue([a[0]!]);
  t.deepEqual(backlog.take([0, 1], 10, 1_001), { ids: [b[1], a[0]], uncovered: [] }, 'older than the requeued one first');
  t.deepEqual(backlog.take([0, 1, 2], 10, 1_002), { ids: [c[0]], uncovered: [0, 1] }, 'emptied lists are looked at again');
  // Listing partition 1 again leaves partition 0's list as it was.
  backlog.requeue([a[2]!]);
  backlog.fill([1], [{ id: b[2]!, partition: 1, oldest: 60 }], 1_500, 10);
  t.deepEqual(backlog.take([0, 1], 10, 1_500), { ids: [b[2], a[2]], uncovered: [] });
});

test('the list is looked again after 2 s, or ten times its look, and not used after 10 s', (t) => {
  const ids = auctionsIn([0], 3).get(0)!;
  const backlog = new Backlog();
  backlog.fill([0], ids.map((id, i) => ({ id, partition: 0, oldest: i })), 0, 10);
  t.false(backlog.stale([0], 1_999));
  t.true(backlog.stale([0], 2_000));
  // A slow look (a deep backlog): looked again less often, at most every 5 s.
  backlog.fill([0], ids.map((id, i) => ({ id, partition: 0, oldest: i })), 0, 300);
  t.false(backlog.stale([0], 2_999));
  t.true(backlog.stale([0], 3_000));
  backlog.fill([0], ids.map((id, i) => ({ id, partition: 0, oldest: i })), 0, 5_000);
  t.true(backlog.stale([0], 5_000));
  // Never looked again (its looks keep failing): after 10 s the list is dropped.
  t.deepEqual(backlog.take([0], 1, 9_999).ids, [ids[0]]);
  t.deepEqual(backlog.take([0], 5, 10_000), { ids: [], uncovered: [0] });
});
