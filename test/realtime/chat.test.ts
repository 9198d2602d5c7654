import http from 'node:http';
import test from 'ava';
import { createAdmin, registerUser, useSystem } from '../helpers/system.js';
import { bid, liveAuction, verdict, waitFor } from '../helpers/auctions.js';
import { connectWs } from '../helpers/ws.js';

const system = useSystem(test, { workers: true, broadcaster: true });

async function subscribed(url: string, auctionId: string, token?: string) {
  const c = await connectWs(url, token);
  c.send({ type: 'subscribe', auctionId });
  await c.next((f) => f.type === 'subscribed');
  return c;
}

test('chat: a user\'s message reaches every subscriber as chat.message with the auction\'s next seq, and is stored', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const alice = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  const viewer = await subscribed(sys.broadcaster!.url, a.id);
  const talker = await subscribed(sys.broadcaster!.url, a.id, alice.accessToken);
  talker.send({ type: 'chat.send', auctionId: a.id, text: '  Hello, nice lamp!  ', clientMsgId: 'm1' });
  const msg = await viewer.next((f) => f.type === 'chat.message');
  t.is(msg.seq, 2);
  t.is(msg.userId, alice.id);
  t.is(msg.name, alice.name);
  t.is(msg.text, 'Hello, nice lamp!');
  t.truthy(msg.id);
  await talker.next((f) => f.type === 'chat.message');
  // The same clientMsgId again is not stored twice.
  talker.send({ type: 'chat.send', auctionId: a.id, text: 'Hello, nice lamp!', clientMsgId: 'm1' });
  await new Promise((r) => setTimeout(r, 1100));
  const history = await sys.api.get(`/api/v1/auctions/${a.id}/chat`);
  t.deepEqual(history.body.data.map((m: { text: string }) => m.text), ['Hello, nice lamp!']);
  t.is(history.body.data[0].seq, 2);
  for (const c of [viewer, talker]) c.close();
});

test('chat refusals are error frames: anonymous, too long, slow mode, blocked words', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const bob = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  const anon = await subscribed(sys.broadcaster!.url, a.id);
  anon.send({ type: 'chat.send', auctionId: a.id, text: 'hi' });
  t.is((await anon.next((f) => f.type === 'error')).code, 'unauthorized');
  const c = await subscribed(sys.broadcaster!.url, a.id, bob.accessToken);
  c.send({ type: 'chat.send', auctionId: a.id, text: 'x'.repeat(501) });
  t.is((await c.next((f) => f.type === 'error')).code, 'bad_frame');
  // A NUL character (Postgres text cannot hold one: it was 'unavailable', the slow-mode token spent) and a blank text.
  c.send({ type: 'chat.send', auctionId: a.id, text: 'a\u0000b' });
  c.send({ type: 'chat.send', auctionId: a.id, text: '   ' });
  await waitFor(async () => (c.frames.filter((f) => f.type === 'error').length >= 3 ? true : undefined), 5_000, 'three refusals');
  t.deepEqual(c.frames.filter((f) => f.type === 'error').map((f) => f.code), ['bad_frame', 'bad_frame', 'bad_frame']);
  c.send({ type: 'chat.send', auctionId: a.id, text: 'Great SCAM here' });
  await c.next((f) => f.type === 'error' && f.code === 'blocked');
  for (let i = 0; i < 7; i++) c.send({ type: 'chat.send', auctionId: a.id, text: `msg ${i}` });
  // A token comes back each second, so on a slow machine a sixth may pass: every
  // message is either stored or refused, and at least one is refused.
  const refused = () => c.frames.filter((f) => f.type === 'error' && f.code === 'rate_limited').length;
  const stored = async () => (await sys.api.get(`/api/v1/auctions/${a.id}/chat`)).body.data.length as number;
  await waitFor(async () => ((await stored()) + refused() === 7 ? true : undefined), 5_000, 'every message stored or refused');
  t.true(refused() >= 1, 'slow mode refused some');
  t.true((await stored()) >= 5, 'a burst of 5 passed');
  c.send({ type: 'ping' });
  await c.next((f) => f.type === 'pong');
  for (const x of [anon, c]) x.close();
});

test('chat length is counted in characters: 500 emoji are one message, 501 are refused', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const bob = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  const c = await subscribed(sys.broadcaster!.url, a.id, bob.accessToken);
  c.send({ type: 'chat.send', auctionId: a.id, text: '\u{1F525}'.repeat(500), clientMsgId: 'fire' });
  const msg = await c.next((f) => f.type === 'chat.message');
  t.is([...(msg.text as string)].length, 500);
  c.send({ type: 'chat.send', auctionId: a.id, text: '\u{1F525}'.repeat(501) });
  t.is((await c.next((f) => f.type === 'error')).code, 'bad_frame');
  c.close();
});

test('the broadcaster\'s plain HTTP answers carry nosniff and frame protection', async (t) => {
  const sys = system();
  const base = new URL(sys.broadcaster!.url.replace(/^ws/, 'http'));
  const upgrade = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' };
  for (const [path, headers] of [['/healthz', {}], ['/readyz', {}], ['/nowhere', {}], ['/ws?token=garbage', upgrade]] as const) {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get({ host: base.hostname, port: base.port, path, headers }, resolve);
      req.on('error', reject);
    });
    res.resume();
    t.is(res.headers['x-content-type-options'], 'nosniff', path);
    t.is(res.headers['x-frame-options'], 'DENY', path);
  }
});

test('moderation: delete (chat.deleted), ban refuses chat and bids, unban; only the seller or an admin', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const troll = await registerUser(sys);
  const other = await registerUser(sys);
  const admin = await createAdmin(sys);
  const a = await liveAuction(sys, seller);
  const viewer = await subscribed(sys.broadcaster!.url, a.id);
  const tc = await subscribed(sys.broadcaster!.url, a.id, troll.accessToken);
  tc.send({ type: 'chat.send', auctionId: a.id, text: 'buy my stuff elsewhere' });
  const msg = await viewer.next((f) => f.type === 'chat.message');

  const path = `/api/v1/auctions/${a.id}/chat`;
  t.is((await sys.api.del(`${path}/${msg.id}`, { token: other.accessToken })).status, 403);
  t.is((await sys.api.del(`${path}/${msg.id}`, { token: seller.accessToken })).status, 204);
  const deleted = await viewer.next((f) => f.type === 'chat.deleted');
  t.is(deleted.id, msg.id);
  t.is(deleted.seq, msg.seq + 1);
  t.deepEqual((await sys.api.get(path)).body.data, []);
  t.is((await sys.api.del(`${path}/${msg.id}`, { token: seller.accessToken })).status, 404);

  t.is((await sys.api.post(`${path}/bans`, { userId: troll.id }, { token: other.accessToken })).status, 403);
  const ban = await sys.api.post(`${path}/bans`, { userId: troll.id, durationSeconds: 600 }, { token: admin.accessToken });
  t.is(ban.status, 201);
  t.truthy(ban.body.expiresAt);
  await new Promise((r) => setTimeout(r, 1100));
  tc.send({ type: 'chat.send', auctionId: a.id, text: 'let me back' });
  t.is((await tc.next((f) => f.type === 'error')).code, 'banned');
  const b = await bid(sys, troll, a.id, 1000);
  t.is((await verdict(sys, troll, b.body.bidId)).reason, 'banned');
  t.is((await sys.api.post(`${path}/bans`, { userId: seller.id }, { token: admin.accessToken })).status, 400);
  t.is((await sys.api.post(`${path}/bans`, { userId: troll.id, durationSeconds: 0 }, { token: seller.accessToken })).status, 400);

  t.is((await sys.api.del(`${path}/bans/${troll.id}`, { token: seller.accessToken })).status, 204);
  tc.send({ type: 'chat.send', auctionId: a.id, text: 'sorry' });
  await viewer.next((f) => f.type === 'chat.message' && f.text === 'sorry');
  for (const c of [viewer, tc]) c.close();
});

test('chat history is paginated newest first', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const users = await Promise.all(Array.from({ length: 5 }, () => registerUser(sys)));
  const a = await liveAuction(sys, seller);
  for (const [i, u] of users.entries()) {
    const c = await subscribed(sys.broadcaster!.url, a.id, u.accessToken);
    c.send({ type: 'chat.send', auctionId: a.id, text: `line ${i}` });
    await c.next((f) => f.type === 'chat.message' && f.text === `line ${i}`);
    c.close();
  }
  const p1 = await sys.api.get(`/api/v1/auctions/${a.id}/chat?limit=2`);
  const p2 = await sys.api.get(`/api/v1/auctions/${a.id}/chat?limit=2&cursor=${p1.body.nextCursor}`);
  const p3 = await sys.api.get(`/api/v1/auctions/${a.id}/chat?limit=2&cursor=${p2.body.nextCursor}`);
  t.deepEqual([...p1.body.data, ...p2.body.data, ...p3.body.data].map((m: { text: string }) => m.text), ['line 4', 'line 3', 'line 2', 'line 1', 'line 0']);
  t.is(p3.body.nextCursor, null);
});

test("one connection's messages get seqs in the order it sent them", async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const a = await liveAuction(sys, seller);
  // Five talkers, each sending its burst of five at once, interleaved.
  const talkers = await Promise.all(Array.from({ length: 5 }, () => registerUser(sys)));
  const clients = await Promise.all(talkers.map((u) => subscribed(sys.broadcaster!.url, a.id, u.accessToken)));
  for (let i = 0; i < 5; i++) clients.forEach((c, k) => c.send({ type: 'chat.send', auctionId: a.id, text: `${k}:${i}` }));
  const viewer = clients[0]!;
  await waitFor(async () => (viewer.frames.filter((f) => f.type === 'chat.message').length === 25 ? true : undefined), 15_000, '25 messages');
  const messages = viewer.frames.filter((f) => f.type === 'chat.message');
  t.deepEqual(messages.map((m) => m.seq), [...messages.map((m) => m.seq)].sort((x, y) => x - y), 'delivered in seq order');
  for (let k = 0; k < 5; k++) {
    t.deepEqual(messages.filter((m) => m.userId === talkers[k]!.id).map((m) => m.text), [0, 1, 2, 3, 4].map((i) => `${k}:${i}`), `talker ${k}'s order`);
  }
  for (const c of clients) c.close();
});

test('chat: text or ids that Postgres cannot store are bad_frame, and blocked words are found however they are spaced or written', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const a = await liveAuction(sys, seller);
  const users = await Promise.all(Array.from({ length: 3 }, () => registerUser(sys)));
  // Each client sends at most 5 (slow mode's burst), so every answer is the frame's own.
  const [c1, c2, c3] = await Promise.all(users.map((u) => subscribed(sys.broadcaster!.url, a.id, u.accessToken)));
  const refusals = async (c: Awaited<ReturnType<typeof subscribed>>, texts: { text: string; clientMsgId?: string }[]) => {
    for (const f of texts) c.send({ type: 'chat.send', auctionId: a.id, ...f });
    await waitFor(async () => (c.frames.filter((f) => f.type === 'error').length >= texts.length ? true : undefined), 5_000, `${texts.length} refusals`);
    return c.frames.filter((f) => f.type === 'error').map((f) => f.code);
  };
  t.deepEqual(
    await refusals(c1!, [{ text: 'x\ud800' }, { text: '\udc00 hi' }, { text: 'hi', clientMsgId: 'a\u0000' }, { text: 'tab\there' }, { text: 'esc\u001b[31m' }]),
    ['bad_frame', 'bad_frame', 'bad_frame', 'bad_frame', 'bad_frame'],
  );
  t.deepEqual(
    await refusals(c2!, [{ text: 'wire  transfer please' }, { text: 'wire\u00a0transfer' }, { text: 'a sc\u200bam' }, { text: 'ｓｃａｍ!' }, { text: 'FRAUD.' }]),
    ['blocked', 'blocked', 'blocked', 'blocked', 'blocked'],
  );
  // Words that merely contain one pass; a pair with an emoji is fine.
  c3!.send({ type: 'chat.send', auctionId: a.id, text: 'scampi \u{1F990}' });
  await c3!.next((f) => f.type === 'chat.message');
  t.deepEqual(c3!.frames.filter((f) => f.type === 'error'), []);
  await new Promise((r) => setTimeout(r, 300));
  const stored = (await sys.api.get(`/api/v1/auctions/${a.id}/chat`)).body.data as { text: string }[];
  t.deepEqual(stored.map((m) => m.text), ['scampi \u{1F990}']);
  for (const c of [c1, c2, c3]) c!.close();
});
