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
    help: 'Connections closed for a full send buffer (slow viewers) or frames dropped',
    registers: [registry],
  });
  return { registry, messagesOut, dropped };
}
