/**
 * The broadcaster: a uWebSockets.js server on WS_PORT. It authenticates at the
 * upgrade (an invalid token is refused with 401; a socket is closed with 4401
 * when its token's session has ended, or ends: see closeEndedSessions),
 * answers pings, rejects bad
 * frames with an `error` frame (the connection stays open), serves auction
 * subscriptions (replay from `sinceSeq`, then live, see subscriptions.ts), and
 * delivers private per-user events read from the user-events Redis stream to
 * that user's connections on this instance. Every instance reads every stream
 * it needs (no consumer groups: fan-out, not work sharing).
 *
 * Limits: frames up to 16 KiB (larger closes the connection, as uWS does);
 * 20 frames a second per connection with bursts of 40 (then `rate_limited`
 * error frames); 50 auctions per connection; idle connections are pinged and
 * closed after 60 s without traffic. A viewer that stops reading is closed once
 * 1 MiB is buffered for it (memory stays bounded); it reconnects and resumes
 * with `sinceSeq`, losing nothing.
 */
import { metricsAllowed } from '../../lib/metrics-token.js';
import uWS from 'uWebSockets.js';
import type { Knex } from 'knex';
import type { Config } from '../../lib/env.js';
import type { Logger } from '../../lib/logger.js';
import { closeForGood, connectionErrorLog, createRedis, waitForRedis, type Redis } from '../../lib/redis.js';
import { readiness } from '../../lib/readiness.js';
import { within } from '../../lib/within.js';
import { shutdownDelay } from '../../lib/shutdown.js';
import { loadKeys, verifyAccessToken, type AccessClaims } from '../../lib/jwt.js';
import { createDb } from '../../db/client.js';
import { endedSessions } from '../../db/operations/refresh-tokens.js';
import { userEventsStream } from '../../queues/streams.js';
import { MAX_FRAME_BYTES, parseFrame } from './protocol.js';
import { AuctionFeed, withWatchdog } from './auction-feed.js';
import { Subscriptions, auctionTopic, type Subscriber } from './subscriptions.js';
import { sendChat } from './chat.js';
import { addUniqueViewer, reportViewers, viewerTotals } from '../../lib/viewers.js';
import { createBroadcasterMetrics } from './metrics.js';
import { randomUUID } from 'node:crypto';

interface SocketData {
  user: AccessClaims | null;
  /** Subscribed auctions, each with the number of its subscribe (a later subscribe of the same auction gets a new one). */
  auctions: Map<string, number>;
  open: boolean;
  /** Token bucket for incoming frames. */
  tokens: number;
  refilledAt: number;
  /** This connection's id (an anonymous viewer's identity for unique counts). */
  id: string;
  /**
   * This connection's chat.send frames, handled one after another so that its
   * messages get seqs in the order it sent them (each is a transaction of its
   * own; run at once, they would take the auction's row lock in any order).
   */
  chat: Promise<void>;
  /** chat.send frames waiting in `chat`; over MAX_CHAT_QUEUED more are refused. */
  chatQueued: number;
  /**
   * A signed-in socket's frames while its session is being checked (copies, up to
   * the frame burst), handled in order once the session is known to live. Null
   * once it is (and for anonymous ones).
   */
  held: { message: ArrayBuffer; isBinary: boolean }[] | null;
  /** Frames refused while held (over the burst): one rate_limited answers them all. */
  heldRefused: number;
  /** Bytes waiting in its send buffer at the last sample (see backlogTimer). */
  backlog: number;
}

const FRAMES_PER_SECOND = 20;
const FRAME_BURST = 40;
const MAX_SUBSCRIPTIONS = 50;
/** Far above slow mode's burst (5): only a client flooding a slow database reaches it. */
const MAX_CHAT_QUEUED = 20;

export interface RunningBroadcaster {
  port: number;
  url: string;
  close: () => Promise<void>;
}

const userTopic = (id: string) => `user:${id}`;

/** A send buffer this full at the last sample, then a 1006 close: a viewer that stopped reading. */
const SLOW_BACKLOG = 64 * 1024;

/** Why a socket closed, for blytz_ws_closed_total (close codes as the server saw them). */
export function closeReason(code: number, backlog: number): 'normal' | 'session_ended' | 'slow_viewer' | 'lost' | 'other' {
  if (code === 1000 || code === 1001 || code === 1005) return 'normal';
  if (code === 4401) return 'session_ended';
  if (code === 1006) return backlog >= SLOW_BACKLOG ? 'slow_viewer' : 'lost';
  return 'other';
}

export async function startBroadcaster(config: Config, logger: Logger): Promise<RunningBroadcaster> {
  const keys = loadKeys(config);
  const redis: Redis = createRedis(config, 'command');
  const reader: Redis = createRedis(config, 'blocking');
  const redisError = connectionErrorLog(logger);
  for (const r of [redis, reader]) r.on('error', (err) => redisError(err));
  await waitForRedis(redis, 10_000);
  const db: Knex = createDb(config, { poolMax: 4, watchdog: true, logger });
  // Its name is unique, so that its connection's id can be found after a reconnect (auction-feed.ts).
  const feedReader: Redis = createRedis(config, 'blocking', { connectionName: `blytz-feed-${randomUUID()}` });
  feedReader.on('error', (err) => redisError(err));
  const sockets = new Set<uWS.WebSocket<SocketData>>();
  let stopping = false;
  /** Shutting down, still serving until SHUTDOWN_DELAY_MS has passed: /readyz says 503. */
  let draining = false;

  /**
   * Whether the session `sid` has ended, for a socket just opened: those opened
   * while a lookup runs wait for the next, one query for all of them (a
   * reconnect storm after a restart is thousands). If Postgres fails, false.
   */
  const waiting = new Map<string, ((ended: boolean) => void)[]>();
  let lookingUp = false;
  const lookUpSessions = () => {
    if (lookingUp || waiting.size === 0) return;
    lookingUp = true;
    const batch = new Map(waiting);
    waiting.clear();
    const settle = (ended: Set<string>) => {
      for (const [sid, callbacks] of batch) for (const cb of callbacks) cb(ended.has(sid));
    };
    endedSessions(db, [...batch.keys()])
      .then(settle, (err: unknown) => {
        logger.warn({ err: (err as Error).message }, 'sessions of new sockets not checked; left open');
        settle(new Set());
      })
      .finally(() => {
        lookingUp = false;
        lookUpSessions();
      });
  };
  const sessionEnded = (sid: string) =>
    new Promise<boolean>((resolve) => {
      const callbacks = waiting.get(sid);
      if (callbacks) callbacks.push(resolve);
      else waiting.set(sid, [resolve]);
      setImmediate(lookUpSessions);
    });
  /**
   * A socket is bound to the session of the token it opened with, not to the
   * token's lifetime: it stays open while the session lives (the client keeps
   * refreshing its tokens over REST), and is closed (4401 "session ended") once
   * the session ends: a logout, a password change from another session, a
   * reused refresh token, the account deleted. Else a stolen token's socket
   * would go on receiving its victim's private events after the victim changed
   * their password. Checked every WS_SESSION_CHECK_MS, one query per 5,000
   * sessions.
   */
  let sessionRun: Promise<void> | null = null;
  const closeEndedSessions = () => {
    if (sessionRun || stopping) return;
    const bySid = new Map<string, [uWS.WebSocket<SocketData>, SocketData][]>();
    for (const ws of sockets) {
      const data = ws.getUserData();
      if (!data.user) continue;
      const list = bySid.get(data.user.sid);
      if (list) list.push([ws, data]);
      else bySid.set(data.user.sid, [[ws, data]]);
    }
    if (bySid.size === 0) return;
    sessionRun = (async () => {
      const sids = [...bySid.keys()];
      for (let i = 0; i < sids.length && !stopping; i += 5_000) {
        const ended = await endedSessions(db, sids.slice(i, i + 5_000));
        if (stopping) return;
        for (const sid of ended) {
          for (const [ws, data] of bySid.get(sid) ?? []) if (data.open) ws.end(4401, 'session ended');
        }
      }
    })()
      .catch((err: unknown) => {
        if (!stopping) logger.warn({ err: (err as Error).message }, 'sessions not checked');
      })
      .finally(() => {
        sessionRun = null;
      });
  };
  // Not holding the process up (close() clears it; a failed start-up never gets to).
  const sessionTimer = setInterval(closeEndedSessions, config.wsSessionCheckMs);
  sessionTimer.unref();
  // uWS closes a socket whose send buffer passes maxBackpressure (a viewer that
  // does not read) without telling the app why: its close handler sees 1006, as
  // for a lost connection, and the buffer can no longer be read. Each socket's
  // backlog is sampled four times a second instead, and a 1006 close after a
  // sample over SLOW_BACKLOG counts as a slow viewer's (~1 ms a sample for 10,000
  // sockets). A buffer that fills within one sample period is counted as lost.
  const backlogTimer = setInterval(() => {
    for (const ws of sockets) {
      const data = ws.getUserData();
      if (data.open) data.backlog = ws.getBufferedAmount();
    }
  }, 250);
  backlogTimer.unref();

  const app = uWS.App();
  const local = new Map<string, number>();
  let subscriptions: Subscriptions | undefined;
  // An auction's events after `after` and before `before`, from the outbox: what
  // the stream no longer holds (trimmed) or does not hold yet (a publish behind).
  // A gap longer than the stream itself is not filled: each read is bounded.
  const fromOutbox = async (auctionId: string, after: number, before: number) => {
    if (before - after - 1 > config.auctionStreamMaxlen) return [];
    const rows = (await db('auction_events').where({ auction_id: auctionId }).where('seq', '>', after).where('seq', '<', before).orderBy('seq').select('seq', 'payload')) as {
      seq: string;
      payload: unknown;
    }[];
    return rows.map((r) => ({ auctionId, seq: Number(r.seq), json: JSON.stringify(r.payload) }));
  };
  const feed = new AuctionFeed(feedReader, redis, config.redis.prefix, logger, (e) => subscriptions?.deliver(e), fromOutbox, (auctionId) => {
    // Events this instance cannot send: every socket of the auction gets resync
    // and is no longer subscribed (the client reloads and subscribes again).
    const frame = JSON.stringify({ type: 'resync', auctionId });
    for (const ws of sockets) {
      if (!ws.getUserData().auctions.has(auctionId)) continue;
      leave(ws, auctionId);
      if (ws.getUserData().open) ws.send(frame);
    }
  });
  subscriptions = new Subscriptions(app, db, redis, config.redis.prefix, feed, (id) => Math.max(totals.get(id) ?? 0, local.get(id) ?? 0), fromOutbox);
  const subs = subscriptions;
  const instance = randomUUID();
  const totals = new Map<string, number>();
  const metrics = createBroadcasterMetrics(() => ({ connections: sockets.size, subscriptions: [...local.values()].reduce((a, b) => a + b, 0) }));
  subs.onPublish = (topic) => metrics.messagesOut.inc(app.numSubscribers(topic));
  const asSubscriber = (ws: uWS.WebSocket<SocketData>) => ({
    send: (text: string) => {
      if (ws.getUserData().open && ws.send(text) === 2) metrics.dropped.inc();
    },
    subscribe: (topic: string) => {
      if (ws.getUserData().open) ws.subscribe(topic);
    },
    unsubscribe: (topic: string) => {
      if (ws.getUserData().open) ws.unsubscribe(topic);
    },
    isOpen: () => ws.getUserData().open,
  });
  const subscribers = new WeakMap<uWS.WebSocket<SocketData>, ReturnType<typeof asSubscriber>>();
  const subscriberOf = (ws: uWS.WebSocket<SocketData>) => {
    let s = subscribers.get(ws);
    if (!s) {
      subscribers.set(ws, (s = asSubscriber(ws)));
      socketOf.set(s, ws);
    }
    return s;
  };
  /** The socket of each Subscriber handed to `subs` (for onResync). */
  const socketOf = new WeakMap<Subscriber, uWS.WebSocket<SocketData>>();
  /** Subscribes so far (numbers each, see SocketData.auctions). */
  let subscribes = 0;
  /**
   * Auctions with a subscription here that found the auction: only these have
   * their counts reported to Redis (a subscribe to an id that does not exist is
   * counted in `local` until its lookup answers, and must leave no keys).
   */
  const confirmed = new Set<string>();
  const leave = (ws: uWS.WebSocket<SocketData>, auctionId: string) => {
    const data = ws.getUserData();
    if (!data.auctions.delete(auctionId)) return;
    subs.unsubscribe(subscriberOf(ws), auctionId);
    const n = (local.get(auctionId) ?? 1) - 1;
    if (n > 0) local.set(auctionId, n);
    else {
      local.delete(auctionId);
      confirmed.delete(auctionId);
    }
  };
  // A replay that ended in resync after its 'subscribed' answer: the socket is no
  // longer subscribed, so the client may subscribe again.
  subs.onResync = (sub, auctionId) => {
    const ws = socketOf.get(sub);
    if (ws) leave(ws, auctionId);
  };
  const sendError = (ws: uWS.WebSocket<SocketData>, code: string, message: string) => {
    if (ws.getUserData().open) ws.send(JSON.stringify({ type: 'error', code, message }));
  };
  /** The headers every response carries (API.md: no sniffing, no framing), after its status. */
  const plainHeaders = (res: uWS.HttpResponse, status: string, type: string) =>
    res.writeStatus(status).writeHeader('Content-Type', type).writeHeader('X-Content-Type-Options', 'nosniff').writeHeader('X-Frame-Options', 'DENY');
  const json = (res: uWS.HttpResponse, status: string, body: unknown) => {
    res.cork(() => {
      plainHeaders(res, status, 'application/json').end(JSON.stringify(body));
    });
  };
  app.get('/healthz', (res) => json(res, '200 OK', { status: 'ok' }));
  app.get('/metrics', (res, req) => {
    if (!metricsAllowed(config, req.getHeader('authorization') || undefined)) return json(res, '401 Unauthorized', { error: { code: 'unauthorized', message: 'metrics token required' } });
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    void metrics.registry.metrics().then(
      (text) => {
        if (aborted) return;
        res.cork(() => {
          plainHeaders(res, '200 OK', metrics.registry.contentType).end(text);
        });
      },
      (err: unknown) => {
        logger.warn({ err: (err as Error).message }, 'metrics not collected');
        if (!aborted) json(res, '500 Internal Server Error', { error: { code: 'internal', message: 'metrics not collected' } });
      },
    );
  });
  app.get('/readyz', (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    void readiness({ db, redis }).then(({ ok, checks }) => {
      if (aborted) return;
      const ready = ok && !stopping && !draining;
      json(res, ready ? '200 OK' : '503 Service Unavailable', { status: ready ? 'ready' : 'not_ready', checks });
    });
  });

  /** One frame of a socket: rate limit, parse, act. */
  function handleFrame(ws: uWS.WebSocket<SocketData>, message: ArrayBuffer, isBinary: boolean): void {
    const data = ws.getUserData();
    const now = Date.now();
    data.tokens = Math.min(FRAME_BURST, data.tokens + ((now - data.refilledAt) / 1000) * FRAMES_PER_SECOND);
    data.refilledAt = now;
    if (data.tokens < 1) return sendError(ws, 'rate_limited', 'too many frames, slow down');
    data.tokens -= 1;
    const parsed = parseFrame(message, isBinary);
    if (!parsed.ok) return sendError(ws, parsed.code, parsed.message);
    const frame = parsed.frame;
    switch (frame.type) {
      case 'ping':
        ws.send(JSON.stringify({ type: 'pong' }));
        return;
      case 'subscribe': {
        if (data.auctions.has(frame.auctionId)) return sendError(ws, 'already_subscribed', 'already subscribed to this auction');
        if (data.auctions.size >= MAX_SUBSCRIPTIONS) return sendError(ws, 'too_many_subscriptions', `at most ${MAX_SUBSCRIPTIONS} auctions per connection`);
        const auctionId = frame.auctionId;
        const mine = ++subscribes;
        data.auctions.set(auctionId, mine);
        local.set(auctionId, (local.get(auctionId) ?? 0) + 1);
        // Still this subscribe's: not unsubscribed (nor closed) meanwhile, perhaps subscribed again.
        const wanted = () => data.open && data.auctions.get(auctionId) === mine;
        subs.subscribe(subscriberOf(ws), auctionId, frame.sinceSeq, wanted).then(
          (outcome) => {
            if (!wanted()) return;
            if (outcome === 'not_found') {
              leave(ws, auctionId);
              sendError(ws, 'not_found', 'no such auction');
              return;
            }
            // After a resync the client reloads and subscribes again: it is not subscribed now.
            if (outcome === 'resync') leave(ws, auctionId);
            else confirmed.add(auctionId);
            // Counted in Redis once the auction is known to exist (keys per random id would grow without end).
            void addUniqueViewer(redis, config.redis.prefix, auctionId, data.user ? `u:${data.user.id}` : `c:${data.id}`).catch(() => undefined);
          },
          (err: unknown) => {
            logger.warn({ err: (err as Error).message }, 'subscribe failed');
            if (!wanted()) return;
            leave(ws, auctionId);
            sendError(ws, 'unavailable', 'could not subscribe now, try again');
          },
        );
        return;
      }
      case 'unsubscribe':
        if (!data.auctions.has(frame.auctionId)) return sendError(ws, 'not_subscribed', 'not subscribed to this auction');
        leave(ws, frame.auctionId);
        ws.send(JSON.stringify({ type: 'unsubscribed', auctionId: frame.auctionId }));
        return;
      case 'chat.send':
        if (data.chatQueued >= MAX_CHAT_QUEUED) return sendError(ws, 'rate_limited', 'slow mode: one message a second');
        data.chatQueued++;
        data.chat = data.chat.then(() =>
          sendChat({ db, redis, config }, data.user, frame).then(
            (r) => {
              data.chatQueued--;
              if (!r.ok && data.open) sendError(ws, r.code, r.message);
            },
            (err: unknown) => {
              data.chatQueued--;
              logger.warn({ err: (err as Error).message }, 'chat.send failed');
              if (data.open) sendError(ws, 'unavailable', 'the message could not be sent, try again');
            },
          )
          // A link that failed would skip every later one: the queue must go on.
          .catch(() => undefined),
        );
        return;
    }
  }

  app.ws<SocketData>('/ws', {
    maxPayloadLength: MAX_FRAME_BYTES,
    idleTimeout: 60,
    sendPingsAutomatically: true,
    maxBackpressure: 1024 * 1024,
    closeOnBackpressureLimit: 1,
    upgrade: (res, req, context) => {
      const token = new URLSearchParams(req.getQuery() ?? '').get('token');
      let user: AccessClaims | null = null;
      if (token !== null) {
        user = verifyAccessToken(keys, config, token);
        if (!user) {
          res.cork(() => {
            plainHeaders(res, '401 Unauthorized', 'application/json').end(JSON.stringify({ error: { code: 'unauthorized', message: 'invalid or expired token' } }));
          });
          return;
        }
      }
      // Upgraded at once, never after an await: uWS.js 20.30 can close a socket
      // upgraded asynchronously right after its open (a corked upgrade misreads
      // the response's state; uNetworking/uWebSockets#1929, uWebSockets.js#1108):
      // in about half the runs of a test that connected one signed-in socket.
      // The session is checked in `open` instead.
      res.upgrade<SocketData>(
        { user, auctions: new Map(), open: true, tokens: FRAME_BURST, refilledAt: Date.now(), id: randomUUID(), chat: Promise.resolve(), chatQueued: 0, held: null, heldRefused: 0, backlog: 0 },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open: (ws) => {
      sockets.add(ws);
      const data = ws.getUserData();
      const { user } = data;
      if (!user) return;
      // A token of a session that has ended (see closeEndedSessions) keeps no
      // socket: closed with 4401 before it gets any of the user's private events
      // or has any of its frames handled (a chat line in the user's name, say):
      // until the session is known, nothing is subscribed and frames are held.
      // If Postgres does not answer, the socket goes on and the periodic check decides.
      data.held = [];
      void sessionEnded(user.sid).then((ended) => {
        if (!data.open) return;
        if (ended) {
          ws.end(4401, 'session ended');
          return;
        }
        ws.subscribe(userTopic(user.id));
        const held = data.held ?? [];
        data.held = null;
        for (const frame of held) {
          if (!data.open) return;
          handleFrame(ws, frame.message, frame.isBinary);
        }
        if (data.heldRefused > 0 && data.open) sendError(ws, 'rate_limited', 'too many frames, slow down');
      });
    },
    message: (ws, message, isBinary) => {
      const data = ws.getUserData();
      if (data.held) {
        // (uWS lends `message` for this call only: a copy is held.) Past the
        // burst, frames are counted, not kept: what one client sends while a
        // slow database answers must not grow the heap.
        if (data.held.length < FRAME_BURST) data.held.push({ message: message.slice(0), isBinary });
        else data.heldRefused++;
        return;
      }
      handleFrame(ws, message, isBinary);
    },
    close: (ws, code) => {
      sockets.delete(ws);
      const data = ws.getUserData();
      data.open = false;
      const reason = closeReason(code, data.backlog);
      metrics.closed.inc({ reason });
      if (reason === 'slow_viewer') metrics.dropped.inc();
      for (const auctionId of [...data.auctions.keys()]) leave(ws, auctionId);
    },
  });
  app.any('/*', (res) => json(res, '404 Not Found', { error: { code: 'not_found', message: 'no such route' } }));

  // Where the private-events pump starts (see below): taken before any client can
  // connect, so that every event after a client's first pong is read.
  const stream = userEventsStream(config.redis.prefix);
  const [tail] = (await reader.xrevrange(stream, '+', '-', 'COUNT', 1)) as [string, string[]][];
  const startId = tail ? tail[0] : '0-0';
  const listenSocket = await new Promise<uWS.us_listen_socket>((resolve, reject) => {
    app.listen(config.host, config.wsPort, (s) => (s ? resolve(s) : reject(new Error(`cannot listen on ${config.wsPort}`))));
  });
  const port = uWS.us_socket_local_port(listenSocket);
  feed.start();

  // Once a second: report this instance's viewers per auction, read the totals
  // across instances, and tell subscribers when a total changed.
  const reported = new Set<string>();
  let viewersRun: Promise<void> | null = null;
  const viewersTimer = setInterval(() => {
    if (viewersRun || stopping) return;
    viewersRun = (async () => {
      for (const auctionId of new Set([...[...local.keys()].filter((id) => confirmed.has(id)), ...reported])) {
        // Stopping: close() reports zero for every auction reported, after this run.
        if (stopping) return;
        const count = local.get(auctionId) ?? 0;
        await reportViewers(redis, config.redis.prefix, auctionId, instance, count);
        if (count === 0) {
          reported.delete(auctionId);
          totals.delete(auctionId);
          continue;
        }
        reported.add(auctionId);
        const { current } = await viewerTotals(redis, config.redis.prefix, auctionId);
        if (totals.get(auctionId) !== current) {
          totals.set(auctionId, current);
          const frame = JSON.stringify({ type: 'viewers', auctionId, count: current });
          metrics.messagesOut.inc(app.numSubscribers(auctionTopic(auctionId)));
          app.publish(auctionTopic(auctionId), frame);
        }
      }
    })()
      .catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'viewer counts not updated'))
      .finally(() => {
        viewersRun = null;
      });
  }, 1_000);

  // Private user events: every instance reads the whole stream from "now".
  const pump = (async () => {
    // Where to read from: the stream's last entry before the server listened,
    // taken once. Reading with "$" took "now" at every call again, so what was
    // added between a read that timed out (or failed) and the next one was
    // skipped, until the first entry had come.
    let lastId = startId;
    while (!stopping) {
      try {
        // An entry can hold 100 events (a round's batch): 50 entries keep one
        // synchronous delivery loop to a few thousand.
        const res = (await withWatchdog(reader, reader.xread('COUNT', 50, 'BLOCK', 1_000, 'STREAMS', stream, lastId))) as
          | [string, [string, string[]][]][]
          | null;
        for (const [, entries] of res ?? []) {
          for (const [id, fields] of entries) {
            lastId = id;
            // An entry holds one event or a batch: `userId`, `event` pairs in order (lib/publisher.ts).
            let userId: string | undefined;
            for (let i = 0; i + 1 < fields.length; i += 2) {
              if (fields[i] === 'userId') userId = fields[i + 1];
              else if (fields[i] === 'event' && userId) app.publish(userTopic(userId), fields[i + 1]!);
            }
          }
        }
      } catch (err) {
        if (stopping) break;
        logger.warn({ err: (err as Error).message }, 'user-events read failed; retrying');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  })();

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Still serving, /readyz 503, until the load balancer has taken this instance out.
      draining = true;
      await shutdownDelay(logger, config.shutdownDelayMs);
      stopping = true;
      clearInterval(viewersTimer);
      // A check in flight is not waited for (its query may wait on a silent
      // Postgres past the grace period): it stops at its next step.
      clearInterval(sessionTimer);
      clearInterval(backlogTimer);
      uWS.us_listen_socket_close(listenSocket);
      // Each Redis step has a second at most: with Redis gone, a reconnecting
      // client's commands (and a disconnected one's blocked read) never settle,
      // and the broadcaster waited out the whole grace period.
      const bounded = (what: string, fn: () => Promise<unknown>) =>
        within(1_000, fn).catch((err: unknown) => logger.warn({ err: (err as Error).message, step: what }, 'shutdown step cut short'));
      // This instance's viewers leave the totals now rather than in 15 s (after a
      // report in flight, which would otherwise put them back).
      await bounded('viewer counts', async () => {
        await viewersRun;
        await Promise.all([...reported].map((id) => reportViewers(redis, config.redis.prefix, id, instance, 0).catch(() => undefined)));
      });
      for (const ws of sockets) ws.end(1001, 'server shutting down');
      closeForGood(reader);
      await bounded('private events', () => pump);
      await bounded('auction feed', () => feed.stop());
      await within(1_000, () => redis.quit()).catch(() => redis.disconnect());
      await db.destroy();
      // Idle HTTP keep-alive connections (a load balancer's health checks) would
      // otherwise keep the process alive after shutdown; uWS.js has app.close()
      // at runtime, though its typings lack it.
      (app as uWS.TemplatedApp & { close?: () => void }).close?.();
    })());
  return { port, url: `ws://127.0.0.1:${port}/ws`, close };
}
