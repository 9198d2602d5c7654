/**
 * Every migration goes down and up again: all the way to zero and back, and one
 * step at a time, each down leaving exactly the schema the step before left.
 */
import test from 'ava';
import { createDb, type Knex } from '../../db/client.js';
import { testConfig } from '../helpers/config.js';
import { createTestDatabase } from '../helpers/db.js';

/** Tables the application cannot work without (others are compared through the snapshot). */
const CORE_TABLES = ['users', 'refresh_tokens', 'notifications'];
const KNEX_TABLES = ['knex_migrations', 'knex_migrations_lock'];

/** The public schema as a comparable value: tables, columns, constraints, indexes, types, functions, triggers. */
async function snapshot(db: Knex) {
  const rows = async (sql: string) => ((await db.raw(sql)) as { rows: Record<string, unknown>[] }).rows.map((r) => Object.values(r).join(' | '));
  return {
    tables: (await rows(`select table_name from information_schema.tables where table_schema = 'public' order by 1`)).filter(
      (t) => !KNEX_TABLES.includes(t),
    ),
    columns: await rows(`
      select table_name, column_name, data_type, is_nullable, coalesce(column_default, '')
      from information_schema.columns where table_schema = 'public' and table_name not like 'knex_%'
      order by table_name, column_name`),
    constraints: await rows(`
      select conrelid::regclass::text, conname, pg_get_constraintdef(oid)
      from pg_constraint where connamespace = 'public'::regnamespace and conrelid::regclass::text not like 'knex_%'
      order by 1, 2`),
    indexes: await rows(`
      select tablename, indexname, indexdef from pg_indexes
      where schemaname = 'public' and tablename not like 'knex_%' order by 1, 2`),
    types: await rows(`
      select t.typname from pg_type t
      where t.typnamespace = 'public'::regnamespace and t.typtype in ('e', 'd', 'c')
        and not exists (select 1 from pg_class c where c.reltype = t.oid)
      order by 1`),
    functions: await rows(`select p.proname, pg_get_function_identity_arguments(p.oid) from pg_proc p where p.pronamespace = 'public'::regnamespace order by 1, 2`),
    triggers: await rows(`select tgrelid::regclass::text, tgname from pg_trigger where not tgisinternal order by 1, 2`),
    sequences: await rows(`select sequence_name from information_schema.sequences where sequence_schema = 'public' and sequence_name not like 'knex_%' order by 1`),
  };
}

type Snapshot = Awaited<ReturnType<typeof snapshot>>;

const isEmpty = (s: Snapshot) => Object.values(s).every((list) => list.length === 0);

function useDatabase() {
  let database: { name: string; drop: () => Promise<void> } | undefined;
  let db: Knex | undefined;
  return {
    open: async () => {
      database = await createTestDatabase();
      db = createDb(testConfig({ DB_NAME: database.name }), { poolMax: 2 });
      return db;
    },
    close: async () => {
      await db?.destroy();
      await database?.drop();
    },
  };
}

async function completed(db: Knex): Promise<string[]> {
  const [done] = (await db.migrate.list()) as [Array<{ name: string } | string>, unknown[]];
  return done.map((m) => (typeof m === 'string' ? m : m.name));
}

test('all migrations roll back to an empty schema and come back identical', async (t) => {
  const handle = useDatabase();
  t.teardown(handle.close);
  const db = await handle.open();

  const migrated = await snapshot(db);
  for (const table of CORE_TABLES) t.true(migrated.tables.includes(table), `${table} exists`);
  const all = await completed(db);
  t.true(all.length >= 2, 'the template ran the migrations');
  const [, pending] = (await db.migrate.list()) as [unknown[], unknown[]];
  t.is(pending.length, 0, 'nothing pending after createTestDatabase');

  const [, rolledBack] = await db.migrate.rollback(undefined, true);
  t.deepEqual([...rolledBack].sort(), [...all].sort(), 'every migration ran down');
  t.deepEqual(await completed(db), []);
  const empty = await snapshot(db);
  t.deepEqual(empty.tables, [], 'every table is gone');
  for (const table of CORE_TABLES) t.false(await db.schema.hasTable(table), `${table} is gone`);
  t.true(isEmpty(empty), `nothing is left behind: ${JSON.stringify(empty)}`);

  const [, applied] = await db.migrate.latest();
  t.deepEqual([...applied].sort(), [...all].sort(), 'every migration ran up');
  t.deepEqual(await snapshot(db), migrated, 'the schema after down and up is the same');
});

test('each migration, one step at a time: down leaves the schema of the step before, up restores it', async (t) => {
  const handle = useDatabase();
  t.teardown(handle.close);
  const db = await handle.open();

  const names = await completed(db);
  // levels[k]: the schema with the first k migrations applied, as seen going down.
  const levels: Snapshot[] = [];
  levels[names.length] = await snapshot(db);
  for (let k = names.length; k > 0; k--) {
    const [, undone] = await db.migrate.down();
    t.deepEqual(undone, [names[k - 1]], `down undoes ${names[k - 1]}`);
    levels[k - 1] = await snapshot(db);
    t.notDeepEqual(levels[k - 1], levels[k], `${names[k - 1]} down changes the schema`);
  }
  t.true(isEmpty(levels[0]!), `nothing is left at zero: ${JSON.stringify(levels[0])}`);

  for (let k = 1; k <= names.length; k++) {
    const [, done] = await db.migrate.up();
    t.deepEqual(done, [names[k - 1]], `up applies ${names[k - 1]}`);
    t.deepEqual(await snapshot(db), levels[k], `after ${names[k - 1]} up, the same schema as before its down`);
  }
  t.deepEqual(await completed(db), names);
});

test('private events move to batches and back: the unpublished ones, in order, compressed where the server can', async (t) => {
  const handle = useDatabase();
  t.teardown(handle.close);
  const db = await handle.open();
  // Down to just before 20261201000007_user_event_batches (later migrations too).
  while (!(await db.schema.hasTable('user_events'))) await db.migrate.down();
  const [, pending] = (await db.migrate.list()) as [unknown[], { file: string }[]];
  t.is(pending[0]?.file, '20261201000007_user_event_batches.ts');
  const [u] = await db('users').insert({ email: 'ue@m', name: 'U', password_hash: 'x' }).returning('id');
  await db('user_events').insert([
    { user_id: u.id, type: 'bid.ack', payload: { type: 'bid.ack', n: 1 } },
    { user_id: u.id, type: 'bid.ack', payload: { type: 'bid.ack', n: 2 }, published_at: db.fn.now() },
    { user_id: u.id, type: 'bid.outbid', payload: { type: 'bid.outbid', n: 3 } },
  ]);
  await db.migrate.up();
  t.false(await db.schema.hasTable('user_events'));
  const batches = await db('user_event_batches').orderBy('id');
  t.deepEqual(
    batches.map((b) => [b.size, b.published_at, b.events]),
    [
      [1, null, [{ userId: u.id, event: { type: 'bid.ack', n: 1 } }]],
      [1, null, [{ userId: u.id, event: { type: 'bid.outbid', n: 3 } }]],
    ],
    'the unpublished ones, in order; the published one is history',
  );
  const { rows } = await db.raw(
    "select attcompression, attstorage from pg_attribute where attrelid = 'user_event_batches'::regclass and attname = 'events'",
  );
  t.true(rows[0].attcompression === 'l' || rows[0].attstorage === 'e', 'lz4, or stored uncompressed');

  await db('user_event_batches').insert({ events: JSON.stringify([{ userId: u.id, event: { type: 'bid.ack', n: 4 } }, { userId: u.id, event: { type: 'auction.won', n: 5 } }]), size: 2 });
  await db.migrate.down();
  const back = await db('user_events').orderBy('id');
  t.deepEqual(
    back.map((e) => [e.user_id, e.type, e.payload.n, e.published_at]),
    [
      [u.id, 'bid.ack', 1, null],
      [u.id, 'bid.outbid', 3, null],
      [u.id, 'bid.ack', 4, null],
      [u.id, 'auction.won', 5, null],
    ],
  );
});

test('a database migrated with the first form of migration 13 (jsonb body, no headers) converges on its final form, its records kept', async (t) => {
  const handle = useDatabase();
  t.teardown(handle.close);
  const db = await handle.open();
  const final = await snapshot(db);
  // Back to 13, then into 13's first form, with a record in it.
  while ((await completed(db)).some((name) => name > '20261203000013_idempotent_requests.ts')) await db.migrate.down();
  await db.raw('alter table idempotent_requests drop column headers');
  await db.raw('alter table idempotent_requests alter column body type jsonb using body::jsonb');
  const [user] = await db('users').insert({ email: 'first.form@example.com', name: 'F', role: 'seller', password_hash: 'x' }).returning('id');
  await db('idempotent_requests').insert({ user_id: user.id, key: 'k1', fingerprint: 'f', status: 201, body: JSON.stringify({ id: 'a1' }) });

  await db.migrate.latest();
  t.deepEqual(await snapshot(db), final, 'the same schema as a database migrated with the final 13');
  const row = await db('idempotent_requests').where({ user_id: user.id, key: 'k1' }).first();
  t.deepEqual(JSON.parse(row.body), { id: 'a1' }, 'the stored answer survives as text');
  t.is(row.headers['content-type'], 'application/json; charset=utf-8', 'replayed as the JSON it was');
});
