import net from 'node:net';
import { freePort } from './redis.js';

export interface TcpProxy {
  port: number;
  /**
   * Every connection open now goes silent: what either side sends is dropped,
   * and neither side sees a close (a lost host, a partition, a failover behind
   * a load balancer). Connections made afterwards are forwarded as usual.
   */
  blackhole: () => void;
  /** While on, connections made are accepted and then silent too (a server that accepts and never answers). */
  silenceNew: (on: boolean) => void;
  /** Connections open now that are not silenced. */
  open: () => number;
  close: () => Promise<void>;
}

/** A TCP proxy on a free port of 127.0.0.1 (see freePort) forwarding to `targetHost:targetPort`. */
export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  let newSilent = false;
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket; silent: boolean }>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    const pair = { client, upstream, silent: newSilent };
    pairs.add(pair);
    client.on('data', (d) => {
      if (!pair.silent) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!pair.silent) client.write(d);
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', () => {
        // A silenced connection stays open on the other side, as after a lost host.
        if (!pair.silent) end();
      });
    }
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    port,
    blackhole: () => {
      for (const p of pairs) p.silent = true;
    },
    silenceNew: (on) => {
      newSilent = on;
    },
    open: () => [...pairs].filter((p) => !p.silent).length,
    close: async () => {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
