/**
 * The naive baseline: an Express handler that applies each bid synchronously
 * (BEGIN; SELECT … FOR UPDATE; INSERT; UPDATE; COMMIT) against the same Postgres,
 * then answers 200. The bid rule is the simplest one: accept if above the price.
 */
import express from 'express';
import pg from 'pg';
import { knexConfig } from '../db/client.js';
import { loadConfig } from '../lib/env.js';

const port = Number(process.env.PORT ?? 0);
// The connection settings ours use (db/client.ts: statement timeouts, the planner
// setting that makes foreign-key checks index lookups), so only the design
// differs. Requests wait for a pooled client as long as it takes (in pg.Pool the
// connect timeout would also bound that wait), as they always have here.
const pool = new pg.Pool({ ...(knexConfig(loadConfig(process.env)).connection as pg.PoolConfig), max: 25, connectionTimeoutMillis: 0 });
const app = express();
app.use(express.json());
app.post('/naive/:id/bid', async (req, res) => {
  const amount = Number(req.body?.amount);
  const client = await pool.connect();
  try {
    await client.query('begin');
    const { rows } = await client.query('select current_price, leader_id from auctions where id = $1 for update', [req.params.id]);
    const accepted = rows[0] && amount > Number(rows[0].current_price);
    await client.query(
      `insert into bids (id, auction_id, bidder_id, kind, amount, receipt_no, received_at, status, applied_at)
       values (gen_random_uuid(), $1, (select seller_id from auctions where id = $1), 'bid', $2,
               (select coalesce(max(receipt_no), 0) + 1 from bids where auction_id = $1), clock_timestamp(), $3, clock_timestamp())`,
      [req.params.id, amount, accepted ? 'accepted' : 'rejected'],
    );
    if (accepted) await client.query('update auctions set current_price = $2, bid_count = bid_count + 1, seq = seq + 1 where id = $1', [req.params.id, amount]);
    await client.query('commit');
    res.json({ accepted });
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    res.status(500).json({ error: (err as Error).message });
  } finally {
    client.release();
  }
});
const server = app.listen(port, '127.0.0.1', () => {
  process.stdout.write(`naive listening ${(server.address() as { port: number }).port}\n`);
});
process.on('SIGTERM', () => server.close(() => void pool.end().then(() => process.exit(0))));
