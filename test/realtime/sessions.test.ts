/**
 * A WebSocket is bound to its token's session: closed (4401) when the session
 * ends, and a socket opened with a token of an ended session is closed at once
 * (4401), though the token itself has not expired.
 */
import test from 'ava';
import { WebSocket } from 'ws';
import { registerUser, useSystem } from '../helpers/system.js';
import { waitFor } from '../helpers/auctions.js';
import { userEventsEntry } from '../../queues/streams.js';

const system = useSystem(test, { broadcaster: true, env: { WS_SESSION_CHECK_MS: '1500' } });

/** Opens a socket; resolves with it once open, or with the refused upgrade's status. */
function open(url: string, token: string): Promise<{ ws?: WebSocket; status?: number; closed: { code?: number } }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}?token=${token}`);
    const closed: { code?: number } = {};
    ws.on('close', (code) => (closed.code = code));
    ws.once('open', () => resolve({ ws, closed }));
    ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode, closed }));
    ws.once('error', reject);
  });
}

/** Opens a socket with `token`; resolves with its close code once the server closes it, sooner than the periodic check (1.5 s) would. */
async function closedAtOnce(url: string, token: string): Promise<number | undefined> {
  const s = await open(url, token);
  if (!s.ws) return s.status;
  await waitFor(async () => (s.closed.code !== undefined ? true : undefined), 1_000, 'closed by the server at once');
  return s.closed.code;
}

test("a socket closes when its session ends (another session's password change, a logout); one opened with the ended session's token closes at once", async (t) => {
  const sys = system();
  const url = sys.broadcaster!.url;
  const u = await registerUser(sys); // session A
  const login = await sys.api.post('/api/v1/auth/login', { email: u.email, password: u.password }); // session B
  t.is(login.status, 200);
  const b = login.body as { accessToken: string; refreshToken: string };
  const third = await sys.api.post('/api/v1/auth/login', { email: u.email, password: u.password }); // session C
  const c = third.body as { accessToken: string; refreshToken: string };

  const sockA = await open(url, u.accessToken);
  const sockB = await open(url, b.accessToken);
  const sockC = await open(url, c.accessToken);
  // A refresh is not an end: C's socket stays open with C's new tokens.
  const refreshed = await sys.api.post('/api/v1/auth/refresh', { refreshToken: c.refreshToken });
  t.is(refreshed.status, 200);

  // B changes the password: A's and C's sessions end, B's goes on.
  t.is((await sys.api.post('/api/v1/auth/change-password', { currentPassword: u.password, newPassword: 'another-password-1' }, { token: b.accessToken })).status, 204);
  await waitFor(async () => (sockA.closed.code !== undefined && sockC.closed.code !== undefined ? true : undefined), 5_000, 'A and C closed');
  t.is(sockA.closed.code, 4401);
  t.is(sockC.closed.code, 4401);
  // Their access tokens have not expired, but keep no socket now.
  t.is(await closedAtOnce(url, u.accessToken), 4401);
  t.is(await closedAtOnce(url, (refreshed.body as { accessToken: string }).accessToken), 4401);

  // B's socket is still open and served.
  await new Promise((r) => setTimeout(r, 600));
  t.is(sockB.closed.code, undefined);
  sockB.ws!.send(JSON.stringify({ type: 'ping' }));
  await new Promise<void>((resolve) => sockB.ws!.once('message', () => resolve()));

  // B logs out: its socket closes too.
  t.is((await sys.api.post('/api/v1/auth/logout', { refreshToken: b.refreshToken }, { token: b.accessToken })).status, 204);
  await waitFor(async () => (sockB.closed.code !== undefined ? true : undefined), 5_000, 'B closed');
  t.is(sockB.closed.code, 4401);
  t.is(await closedAtOnce(url, b.accessToken), 4401);

  // A new login's session opens as usual.
  const again = await sys.api.post('/api/v1/auth/login', { email: u.email, password: 'another-password-1' });
  const fresh = await open(url, (again.body as { accessToken: string }).accessToken);
  t.truthy(fresh.ws);
  fresh.ws!.send(JSON.stringify({ type: 'ping' }));
  await new Promise<void>((resolve) => fresh.ws!.once('message', () => resolve()));
  t.is(fresh.closed.code, undefined);
  fresh.ws!.close();
});

const outbid = (userId: string, n: number) => ({ userId, json: JSON.stringify({ type: 'bid.outbid', auctionId: '00000000-0000-4000-8000-000000000000', currentPrice: n }) });

test('a socket of an ended session gets nothing before it is closed: no private event, no answer to a frame', async (t) => {
  const sys = system();
  const url = sys.broadcaster!.url;
  const victim = await registerUser(sys);
  // The session ends; its access token still has minutes to run.
  t.is((await sys.api.post('/api/v1/auth/logout', { refreshToken: victim.refreshToken }, { token: victim.accessToken })).status, 204);
  // The user's private events keep coming (from another session's bids, say).
  let stop = false;
  let n = 0;
  const producer = (async () => {
    while (!stop) {
      const { key, args } = userEventsEntry(sys.config.redis.prefix, [outbid(victim.id, ++n)]);
      await sys.redis.xadd(key, ...args);
      await new Promise((r) => setTimeout(r, 3));
    }
  })();
  // A thief reconnects with the token in a loop, asking for a pong at once each time.
  const received: string[] = [];
  const codes: number[] = [];
  const until = Date.now() + 2_000;
  while (Date.now() < until) {
    await new Promise<void>((resolve) => {
      const ws = new WebSocket(`${url}?token=${victim.accessToken}`);
      ws.on('open', () => ws.send(JSON.stringify({ type: 'ping' })));
      ws.on('message', (d) => received.push(String(d)));
      ws.on('close', (code) => {
        codes.push(code);
        resolve();
      });
      ws.on('error', () => resolve());
    });
  }
  stop = true;
  await producer;
  t.true(codes.length > 10 && codes.every((c) => c === 4401), `closed with 4401 each time (${codes.length} sockets)`);
  t.true(n > 100, 'private events were being published meanwhile');
  t.deepEqual(received, [], 'nothing reached a socket of the ended session');
});

test('a live session\'s frames sent before its check answers are handled in order once it does; its private events follow the pong', async (t) => {
  const sys = system();
  const url = sys.broadcaster!.url;
  const u = await registerUser(sys);
  const ws = new WebSocket(`${url}?token=${u.accessToken}`);
  const frames: { type: string; currentPrice?: number; code?: string }[] = [];
  ws.on('message', (d) => frames.push(JSON.parse(String(d))));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  // Sent at once, while the session is being checked.
  ws.send(JSON.stringify({ type: 'ping' }));
  ws.send('not json');
  ws.send(JSON.stringify({ type: 'ping' }));
  await waitFor(async () => (frames.length >= 3 ? true : undefined), 5_000, 'answers');
  t.deepEqual(
    frames.map((f) => f.type + (f.code ? `:${f.code}` : '')),
    ['pong', 'error:bad_frame', 'pong'],
  );
  const { key, args } = userEventsEntry(sys.config.redis.prefix, [outbid(u.id, 4242)]);
  await sys.redis.xadd(key, ...args);
  await waitFor(async () => (frames.some((f) => f.type === 'bid.outbid') ? true : undefined), 5_000, 'the private event');
  t.is(frames.find((f) => f.type === 'bid.outbid')!.currentPrice, 4242);
  ws.close();
});

test('frames sent while a slow database checks the session: the first 40 are held and answered, the rest get one rate_limited', async (t) => {
  const sys = system();
  const url = sys.broadcaster!.url;
  const u = await registerUser(sys);
  // The session check waits (a lock here; a busy database in production).
  const trx = await sys.db.transaction();
  await trx.raw('lock table refresh_tokens in access exclusive mode');
  const ws = new WebSocket(`${url}?token=${u.accessToken}`);
  const frames: { type: string; code?: string }[] = [];
  ws.on('message', (d) => frames.push(JSON.parse(String(d))));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  for (let i = 0; i < 5_000; i++) ws.send(JSON.stringify({ type: 'ping' }));
  while (ws.bufferedAmount > 0) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 300));
  t.deepEqual(frames, [], 'nothing answered before the session is known');
  await trx.commit();
  await waitFor(async () => (frames.length >= 41 ? true : undefined), 5_000, 'answers');
  await new Promise((r) => setTimeout(r, 300));
  t.is(frames.length, 41);
  t.true(frames.slice(0, 40).every((f) => f.type === 'pong'));
  t.like(frames[40], { type: 'error', code: 'rate_limited' });
  ws.close();
});
