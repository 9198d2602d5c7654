/**
 * The broadcaster: a uWebSockets.js server on WS_PORT. It authenticates at the
 * upgrade (an invalid token is refused with 401), answers pings, rejects bad
 * frames with an `error` frame, and delivers private per-user events read from
 * the user-events Redis stream to that user's connections on this instance.
 * Every instance reads the whole stream (no consumer group: fan-out, not work
 * sharing). Auction subscriptions and chat arrive with the real-time issue.
 */
import uWS from 'uWebSockets.js';
import type { Knex } from 'knex';
import type { Config } from '../../lib/env.js';
import type { Logger } from '../../lib/logger.js';
import { createRedis, waitForRedis, type Redis } from '../../lib/redis.js';
import { loadKeys, verifyAccessToken, type AccessClaims } from '../../lib/jwt.js';
import { createDb } from '../../db/client.js';
import { userEventsStream } from '../../queues/streams.js';
import { MAX_FRAME_BYTES, parseFrame } from './protocol.js';

interface SocketData {
  user: AccessClaims | null;
}

export interface RunningBroadcaster {
  port: number;
  url: string;
  close: () => Promise<void>;
}

const userTopic = (id: string) => `user:${id}`;

export async function startBroadcaster(config: Config, logger: Logger): Promise<RunningBroadcaster> {
  const keys = loadKeys(config);
  const redis: Redis = createRedis(config, 'command');
  const reader: Redis = createRedis(config, 'blocking');
  for (const r of [redis, reader]) r.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
  await waitForRedis(redis, 10_000);
  const db: Knex = createDb(config, { poolMax: 2 });
  const sockets = new Set<uWS.WebSocket<SocketData>>();
  let stopping = false;

  const app = uWS.App();
  const json = (res: uWS.HttpResponse, status: string, body: unknown) => {
    res.cork(() => {
      res.writeStatus(status).writeHeader('Content-Type', 'application/json').end(JSON.stringify(body));
    });
  };
  app.get('/healthz', (res) => json(res, '200 OK', { status: 'ok' }));
  app.get('/readyz', (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    void Promise.all([
      db.raw('select 1').then(() => 'ok' as const, () => 'down' as const),
      redis.ping().then(() => 'ok' as const, () => 'down' as const),
    ]).then(([postgres, redisState]) => {
      if (aborted) return;
      const ready = postgres === 'ok' && redisState === 'ok' && !stopping;
      json(res, ready ? '200 OK' : '503 Service Unavailable', { status: ready ? 'ready' : 'not_ready', checks: { postgres, redis: redisState } });
    });
  });

  app.ws<SocketData>('/ws', {
    maxPayloadLength: MAX_FRAME_BYTES,
    idleTimeout: 60,
    sendPingsAutomatically: true,
    maxBackpressure: 256 * 1024,
    upgrade: (res, req, context) => {
      const token = new URLSearchParams(req.getQuery() ?? '').get('token');
      let user: AccessClaims | null = null;
      if (token !== null) {
        user = verifyAccessToken(keys, config, token);
        if (!user) {
          res.cork(() => {
            res.writeStatus('401 Unauthorized').writeHeader('Content-Type', 'application/json')
              .end(JSON.stringify({ error: { code: 'unauthorized', message: 'invalid or expired token' } }));
          });
          return;
        }
      }
      res.upgrade<SocketData>(
        { user },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open: (ws) => {
      sockets.add(ws);
      const { user } = ws.getUserData();
      if (user) ws.subscribe(userTopic(user.id));
    },
    message: (ws, message, isBinary) => {
      const parsed = parseFrame(message, isBinary);
      if (!parsed.ok) {
        ws.send(JSON.stringify({ type: 'error', code: parsed.code, message: parsed.message }));
        return;
      }
      const frame = parsed.frame;
      switch (frame.type) {
        case 'ping':
          ws.send(JSON.stringify({ type: 'pong' }));
          return;
        default:
          ws.send(JSON.stringify({ type: 'error', code: 'not_available', message: `${frame.type} is not available yet` }));
      }
    },
    close: (ws) => {
      sockets.delete(ws);
    },
  });
  app.any('/*', (res) => json(res, '404 Not Found', { error: { code: 'not_found', message: 'no such route' } }));

  const listenSocket = await new Promise<uWS.us_listen_socket>((resolve, reject) => {
    app.listen(config.host, config.wsPort, (s) => (s ? resolve(s) : reject(new Error(`cannot listen on ${config.wsPort}`))));
  });
  const port = uWS.us_socket_local_port(listenSocket);

  // Private user events: every instance reads the whole stream from "now".
  const stream = userEventsStream(config.redis.prefix);
  const pump = (async () => {
    let lastId = '$';
    while (!stopping) {
      try {
        const res = (await reader.xread('COUNT', 500, 'BLOCK', 1_000, 'STREAMS', stream, lastId)) as
          | [string, [string, string[]][]][]
          | null;
        for (const [, entries] of res ?? []) {
          for (const [id, fields] of entries) {
            lastId = id;
            const userId = fields[fields.indexOf('userId') + 1];
            const event = fields[fields.indexOf('event') + 1];
            if (userId && event) app.publish(userTopic(userId), event);
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
      stopping = true;
      uWS.us_listen_socket_close(listenSocket);
      for (const ws of sockets) ws.end(1001, 'server shutting down');
      reader.disconnect();
      await pump;
      await redis.quit().catch(() => redis.disconnect());
      await db.destroy();
      // Idle HTTP keep-alive connections (a load balancer's health checks) would
      // otherwise keep the process alive after shutdown; uWS.js has app.close()
      // at runtime, though its typings lack it.
      (app as uWS.TemplatedApp & { close?: () => void }).close?.();
    })());
  return { port, url: `ws://127.0.0.1:${port}/ws`, close };
}
