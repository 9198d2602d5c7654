/**
 * The HTTP floor: plain node:http that reads a bid request's body, parses it
 * and answers 202 `{bidId, status: "queued"}`, and does nothing else (no auth,
 * no limits, no Postgres, no Redis, no worker). Loaded by the same load
 * generator as the pipeline, it shows what the HTTP exchange alone costs on
 * this machine (server and load generator), and so how many bids/s the
 * machine's two cores could take if the HTTP part were the only work.
 */
import http from 'node:http';
import { randomUUID } from 'node:crypto';

const port = Number(process.env.PORT ?? 0);
const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let status = 202;
    let body: string;
    try {
      const bid = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { amount?: unknown };
      if (typeof bid.amount !== 'number') throw new Error('amount');
      body = JSON.stringify({ bidId: randomUUID(), status: 'queued' });
    } catch {
      status = 400;
      body = '{"error":{"code":"validation_failed"}}';
    }
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`floor listening ${(server.address() as { port: number }).port}\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
