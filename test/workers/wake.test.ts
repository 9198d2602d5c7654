/** Drain wake-ups (Producer.wakeDrain / clearWake): one pending job per bid partition. */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { useSystem } from '../helpers/system.js';
import { bidQueueFor, queuePrefix } from '../../queues/names.js';

const system = useSystem(test, { workers: false });

// Serial: two random auctions may share a partition, and so its flag.
test.serial('a wake-up adds a job only when none is pending; a drain taking the flag lets the next one through', async (t) => {
  const sys = system();
  const auctionId = randomUUID();
  const queue = sys.producer.queue(bidQueueFor(auctionId));
  await sys.producer.clearWake(bidQueueFor(auctionId));
  const before = await queue.getWaitingCount();
  t.true(await sys.producer.wakeDrain({ auctionId, upTo: 1 }));
  t.false(await sys.producer.wakeDrain({ auctionId, upTo: 2 }), 'a job is pending');
  t.is(await queue.getWaitingCount(), before + 1);
  await sys.producer.clearWake(bidQueueFor(auctionId));
  t.true(await sys.producer.wakeDrain({ auctionId, upTo: 3 }));
  t.is(await queue.getWaitingCount(), before + 2);
});

test.serial('a wake-up whose job cannot be added takes its flag down again', async (t) => {
  const sys = system();
  const auctionId = randomUUID();
  const flag = `${queuePrefix(sys.config.redis.prefix, bidQueueFor(auctionId))}:wake`;
  await sys.producer.clearWake(bidQueueFor(auctionId));
  await t.throwsAsync(sys.producer.wakeDrain({ auctionId, upTo: -1 }), { message: /invalid bid.drain payload/ });
  t.is(await sys.redis.exists(flag), 0, 'no flag without a job');
  t.true(await sys.producer.wakeDrain({ auctionId, upTo: 1 }));
  t.is(await sys.redis.exists(flag), 1);
});
