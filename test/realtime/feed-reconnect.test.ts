/**
 * The broadcaster's live feed across a dropped Redis connection (a private
 * redis-server: other files' broadcasters are not disturbed). ioredis resends
 * the blocked read on the new connection; the feed must go on delivering, and
 * auctions followed afterwards must be read too.
 */
import test from 'ava';
import { registerUser, useSystem } from '../helpers/system.js';
import { liveAuction, waitFor } from '../helpers/auctions.js';
import { connectWs, seqs } from '../helpers/ws.js';
import { auctionStream } from '../../queues/streams.js';

const system = useSystem(test, { broadcaster: true, privateRedis: true });

test('after the feed\'s Redis connection is dropped, live events still arrive, for the auctions followed before and after', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const publish = async (id: string, seq: number) => {
    const frame = { type: 'auction.extended', auctionId: id, seq, at: new Date().toISOString(), endsAt: new Date(Date.now() + 60_000).toISOString() };
    await sys.db('auction_events').insert({ auction_id: id, seq, type: frame.type, payload: JSON.stringify(frame) });
    await sys.db('auctions').where({ id }).update({ seq, published_seq: seq });
    await sys.redis.xadd(auctionStream(sys.config.redis.prefix, id), `${seq}-0`, 'event', JSON.stringify(frame));
  };
  const a = await liveAuction(sys, seller, { softCloseSeconds: 0 });
  const c = await connectWs(sys.broadcaster!.url);
  c.send({ type: 'subscribe', auctionId: a.id });
  await c.next((f) => f.type === 'subscribed');
  await publish(a.id, 2);
  await c.next((f) => f.seq === 2 && f.type !== 'subscribed');
  // Drop the feed's connection while its read is blocked.
  const list = String(await sys.redis.call('CLIENT', 'LIST', 'TYPE', 'normal'));
  const ids = list.split('\n').filter((l) => / name=blytz-feed-/.test(l)).map((l) => /(?:^|\s)id=(\d+)/.exec(l)![1]!);
  t.is(ids.length, 1, 'one feed reader');
  const b = await liveAuction(sys, seller, { softCloseSeconds: 0 });
  await sys.redis.call('CLIENT', 'KILL', 'ID', ids[0]!);
  // Right after the reconnect, while the resent read blocks (for up to 5 s): an
  // auction followed now interrupts it, the reader's new connection found by name.
  await waitFor(async () => (/ name=blytz-feed-/.test(String(await sys.redis.call('CLIENT', 'LIST', 'TYPE', 'normal'))) ? true : undefined), 5_000, 'the reader reconnected');
  c.send({ type: 'subscribe', auctionId: b.id });
  await c.next((f) => f.type === 'subscribed' && f.auctionId === b.id);
  await publish(b.id, 2);
  await waitFor(async () => (seqs(c.frames, b.id).includes(2) ? true : undefined), 3_000, "the new auction's event, without waiting out the block");
  await publish(a.id, 3);
  await c.next((f) => f.seq === 3 && f.type !== 'subscribed');
  t.deepEqual(seqs(c.frames, a.id), [2, 3]);
  t.deepEqual(seqs(c.frames, b.id), [2]);
  c.close();
});
