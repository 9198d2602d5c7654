/**
 * Postgres array literals for statement parameters, written here instead of by
 * node-postgres. pg turns every element of an array parameter into a string and
 * escapes it with two regular-expression replaces, numbers and uuids included:
 * in a drain round's write (thousands of elements, event payloads among them
 * then; they now go as one JSON array) that was a fifth of the worker's
 * allocations. The literal is the same text
 * Postgres gets from pg (elements quoted, `"` and `\` escaped, NULL bare); the
 * statement casts it (`?::uuid[]`) as before. test/db/arrays.test.ts compares
 * both through Postgres.
 */

const NEEDS_ESCAPE = /["\\]/;
const ESCAPES = /["\\]/g;

/**
 * The array literal of `values`, or undefined when an element is of a kind left
 * to pg (dates, buffers, arrays, bigints) or is `undefined`, which knex then
 * refuses as an undefined binding (a bug, never a silent NULL).
 */
export function arrayLiteral(values: readonly unknown[]): string | undefined {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    if (v === null) out += 'NULL';
    else if (typeof v === 'string') out += NEEDS_ESCAPE.test(v) ? `"${v.replace(ESCAPES, '\\$&')}"` : `"${v}"`;
    else if (typeof v === 'number') {
      if (!Number.isFinite(v)) return undefined;
      out += String(v);
    } else if (typeof v === 'boolean') out += v ? 'true' : 'false';
    else return undefined;
  }
  return out + '}';
}

/** Statement bindings with arrays written as literals (see arrayLiteral); other values as given. */
export function withArrayLiterals(values: readonly unknown[]): unknown[] {
  return values.map((v) => (Array.isArray(v) ? (arrayLiteral(v) ?? v) : v));
}
