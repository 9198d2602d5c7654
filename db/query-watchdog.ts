/**
 * Drops Postgres connections that have gone silent: a lost host, a network
 * partition, or a failover can leave a connection that neither answers nor
 * closes. A query sent on it waits until the kernel gives up retransmitting
 * (about 15 minutes on Linux), and with it every request that needs that
 * connection: on the edge, every bid's intake write, and soon the whole pool.
 *
 * No statement of the app's roles runs longer than the statement timeout (the
 * server cancels it and answers with an error), so a connection whose oldest
 * query has had no answer for `limitMs` (the timeout and a margin) is dead, or
 * its server is: its socket is destroyed, which fails the queries waiting on it
 * ("Connection terminated unexpectedly") and makes knex discard it, so the pool
 * opens a fresh one. What silenced one connection has most likely silenced the
 * others: those not waiting for an answer are retired, not dropped (one in use
 * between two statements of a transaction goes on), and the pool discards each
 * the next time it would hand it out (`validate`). Migrations are not watched:
 * they may run longer on purpose (`statement_timeout = 0` for concurrent index
 * builds).
 *
 * Every query of a watched connection passes through `query` (knex's callback
 * form and the promise form rawTransaction uses); a Submittable (a cursor or a
 * stream, which this code does not use) is not tracked.
 */
interface PgClient {
  query: (...args: unknown[]) => unknown;
  connection?: { stream?: { destroy: (err?: Error) => void } };
  once: (event: 'end', listener: () => void) => unknown;
}

interface Watched {
  client: PgClient;
  /** Queries sent and not answered. */
  pending: number;
  /** When the connection last made progress: its oldest query was sent, or one was answered. */
  since: number;
}

export interface QueryWatchdog {
  /** knex's pool `afterCreate`: starts watching the connection. */
  afterCreate: (connection: unknown, done: (err: Error | null, connection: unknown) => void) => void;
  /** knex's pool `validate`: false for a retired connection (its socket is then closed). */
  validate: (connection: unknown) => boolean;
}

export function queryWatchdog(limitMs: number): QueryWatchdog {
  const watched = new Set<Watched>();
  const retired = new WeakSet<object>();
  let timer: NodeJS.Timeout | null = null;
  const drop = (w: Watched, why: string) => {
    watched.delete(w);
    w.client.connection?.stream?.destroy(new Error(why));
  };
  const check = () => {
    const now = Date.now();
    const dead = [...watched].filter((w) => w.pending > 0 && now - w.since > limitMs);
    for (const w of dead) drop(w, `no answer from Postgres in ${limitMs} ms: connection dropped`);
    // Rather than each costing the next query that takes it another `limitMs`.
    if (dead.length > 0) for (const w of watched) if (w.pending === 0) retired.add(w.client);
    if (watched.size === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
  };
  const validate = (connection: unknown) => {
    if (!retired.has(connection as object)) return true;
    // Discarded: its socket is closed at once (a silent one would hold an orderly end).
    (connection as PgClient).connection?.stream?.destroy();
    return false;
  };
  const afterCreate: QueryWatchdog['afterCreate'] = (connection, done) => {
    const client = connection as PgClient;
    const w: Watched = { client, pending: 0, since: Date.now() };
    const begin = () => {
      if (w.pending++ === 0) w.since = Date.now();
    };
    const end = () => {
      w.pending--;
      w.since = Date.now();
    };
    const original = client.query;
    client.query = function watchedQuery(this: unknown, ...args: unknown[]) {
      const first = args[0] as { submit?: unknown; callback?: unknown } | undefined;
      if (first && typeof first.submit === 'function') return original.apply(this, args);
      begin();
      const last = args[args.length - 1];
      if (typeof last === 'function') {
        args[args.length - 1] = function (this: unknown, ...r: unknown[]) {
          end();
          return (last as (...a: unknown[]) => unknown).apply(this, r);
        };
        return original.apply(this, args);
      }
      if (first && typeof first === 'object' && typeof first.callback === 'function') {
        const callback = first.callback as (...a: unknown[]) => unknown;
        args[0] = {
          ...first,
          callback(this: unknown, ...r: unknown[]) {
            end();
            return callback.apply(this, r);
          },
        };
        return original.apply(this, args);
      }
      let result: unknown;
      try {
        result = original.apply(this, args);
      } catch (err) {
        end();
        throw err;
      }
      if (result && typeof (result as Promise<unknown>).then === 'function') (result as Promise<unknown>).then(end, end);
      else end();
      return result;
    };
    watched.add(w);
    client.once('end', () => watched.delete(w));
    if (!timer) {
      timer = setInterval(check, Math.max(100, Math.min(1_000, limitMs / 4)));
      timer.unref();
    }
    done(null, connection);
  };
  return { afterCreate, validate };
}
