import client from 'prom-client';

/** The broadcaster's Prometheus registry, served at /metrics on WS_PORT. */
export function createBroadcasterMetrics(read: () => { connections: number; subscriptions: number }) {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'blytz_ws_' });
  new client.Gauge({
    name: 'blytz_ws_connections',
    help: 'Open WebSocket connections on this instance',
    registers: [registry],
    collect() {
      this.set(read().connections);
    },
  });
  new client.Gauge({
    name: 'blytz_ws_subscriptions',
    help: 'Auction subscriptions on this instance',
    registers: [registry],
    collect() {
      this.set(read().subscriptions);
    },
  });
  const messagesOut = new client.Counter({
    name: 'blytz_ws_messages_out_total',
    help: 'Frames published to subscribers (events, viewer counts)',
    registers: [registry],
  });
  const dropped = new client.Counter({
    name: 'blytz_ws_dropped_total',
    help: 'Frames refused by a full send buffer, and connections closed with one (slow viewers: over 64 KiB waiting at the last sample)',
    registers: [registry],
  });
  const closed = new client.Counter({
    name: 'blytz_ws_closed_total',
    help: 'Closed connections by reason: normal, session_ended (4401), slow_viewer (send buffer full), lost (1006 otherwise), other',
    labelNames: ['reason'],
    registers: [registry],
  });
  return { registry, messagesOut, dropped, closed };
}
