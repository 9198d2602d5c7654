/**
 * Our array literals (db/arrays.ts) against node-postgres's own conversion, both
 * read by Postgres: the same arrays come back, equal to what was sent.
 */
import test from 'ava';
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { arrayLiteral, withArrayLiterals } from '../../db/arrays.js';
import { createDb, type Knex } from '../../db/client.js';
import { testConfig } from '../helpers/config.js';

let db: Knex;
test.before(() => {
  db = createDb(testConfig(), { database: 'postgres', poolMax: 1 });
});
test.after.always(async () => {
  await db?.destroy();
});

/** Both ways through Postgres: ours (a literal) and pg's (the JS array). */
async function both(type: string, values: unknown[]): Promise<{ ours: unknown; pgs: unknown }> {
  const literal = arrayLiteral(values);
  if (literal === undefined) throw new Error('no literal');
  const { rows } = await db.raw(`select ?::${type} as ours, ?::${type} as pgs`, [literal, values as Knex.Value]);
  return rows[0];
}

// Strings that need care in an array literal: quotes, backslashes, braces,
// commas, blanks, the word NULL, empty strings, non-ASCII.
const tricky = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ unit: fc.constantFrom('"', '\\', '{', '}', ',', ' ', '\t', 'a', 'N', 'U', 'L', 'é', '\n'), maxLength: 10 }),
  fc.constantFrom('', 'NULL', 'null', ' ', '"', '\\', '\\"', '{}', 'a,b', '{"amount":1}', '["x"]'),
);

test('text arrays: every string, NULL included, comes back as sent, as pg sends it', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.option(tricky, { nil: null }), { maxLength: 8 }), async (values) => {
      const { ours, pgs } = await both('text[]', values);
      t.deepEqual(ours, values);
      t.deepEqual(ours, pgs);
    }),
    { numRuns: 300 },
  );
});

test('numbers, booleans, uuids and JSON documents come back as sent', async (t) => {
  const ints = [0, -1, 1, 9_007_199_254_740_991, -9_007_199_254_740_991, null, 42];
  t.deepEqual((await both('bigint[]', ints)).ours, ints.map((v) => (v === null ? null : String(v))));
  const floats = [1.5, -0.25, 1e21, 3];
  t.deepEqual((await both('float8[]', floats)).ours, floats);
  t.deepEqual((await both('boolean[]', [true, false, null])).ours, [true, false, null]);
  const ids = [randomUUID(), null, randomUUID()];
  t.deepEqual((await both('uuid[]', ids)).ours, ids);
  const docs = [JSON.stringify({ type: 'bid.placed', note: 'a "quoted" \\ back\\slash', list: [1, '{,}'] }), '{}', null];
  const { ours, pgs } = await both('jsonb[]', docs);
  t.deepEqual(ours, pgs);
  t.deepEqual(ours, docs.map((d) => (d === null ? null : JSON.parse(d))));
  t.deepEqual((await both('text[]', [])).ours, []);
});

test('kinds it does not write are left to pg, and undefined to knex, which refuses it', async (t) => {
  t.is(arrayLiteral([new Date()]), undefined);
  t.is(arrayLiteral([[1, 2]]), undefined);
  t.is(arrayLiteral([Infinity]), undefined);
  t.is(arrayLiteral([10n]), undefined);
  // An undefined element is a bug: left to knex, which refuses it, not sent as NULL.
  t.is(arrayLiteral(['a', undefined]), undefined);
  const withHole = ['a', undefined];
  t.is(withArrayLiterals([withHole])[0], withHole);
  const dates = [new Date(0)];
  t.is(withArrayLiterals([dates, 'x', 3])[0], dates);
  t.deepEqual(withArrayLiterals([[1, 'a'], 'x', 3]), ['{1,"a"}', 'x', 3]);
  await t.throwsAsync(db.raw('select ?::text[] as a', withArrayLiterals([withHole]) as Knex.RawBinding[]), { message: /undefined/i });
});
