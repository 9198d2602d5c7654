/**
 * The bid fast path's shortcuts, against what they stand in for: its amount check
 * against joi's bid schemas, its recorded security headers against helmet run on
 * the response.
 */
import test from 'ava';
import fc from 'fast-check';
import http from 'node:http';
import net from 'node:net';
import type { RequestHandler } from 'express';
import { plainAmount, runMiddleware } from '../../edge/http/fast-bids.js';
import { securityHeaderWriter, securityHeaders } from '../../edge/http/middleware/security.js';
import { BODY_OPTIONS } from '../../edge/http/route.js';
import { bidBodies } from '../../edge/http/routes/auctions.js';
import { testConfig } from '../helpers/config.js';

const FIELDS = { bid: 'amount', autobid: 'maxAmount' } as const;

/** Bodies near the accepted ones: right and wrong keys, numbers in and out of range, other types. */
const amounts = fc.oneof(
  fc.integer({ min: -10, max: 200 }),
  fc.integer({ min: 99_999_999_990, max: 100_000_000_010 }),
  fc.double(),
  fc.constantFrom(0, -0, 1, Number.MAX_SAFE_INTEGER, 2 ** 53, Infinity, NaN, 1.5),
  fc.string(),
  fc.boolean(),
  fc.constant(null),
);
const bodies = fc.oneof(
  fc.record({ amount: fc.integer({ min: 1, max: 100_000_000_000 }) }),
  fc.record({ maxAmount: fc.integer({ min: 1, max: 100_000_000_000 }) }),
  fc.record({ amount: amounts }),
  fc.record({ maxAmount: amounts }),
  fc.record({ amount: amounts, maxAmount: amounts }),
  fc.dictionary(fc.constantFrom('amount', 'maxAmount', 'bidderId', '__proto__', 'constructor'), amounts),
  fc.jsonValue(),
  fc.string().map((k) => JSON.parse(`{${JSON.stringify(k)}:1500}`) as unknown),
  fc.constant(JSON.parse('{"amount":1500,"__proto__":{"admin":true}}') as unknown),
  fc.constant(Object.assign(Object.create({ inherited: 1 }) as object, { amount: 1500 })),
  fc.constant([1500]),
);

test('every amount the fast path accepts without joi, joi accepts as the same number', (t) => {
  let accepted = 0;
  fc.assert(
    fc.property(bodies, fc.constantFrom('bid', 'autobid' as const), (body, kind) => {
      const field = FIELDS[kind];
      const fast = plainAmount(body, field);
      if (fast === undefined) return true;
      accepted++;
      const { value, error } = bidBodies[kind].validate(body, BODY_OPTIONS);
      return error === undefined && (value as Record<string, number>)[field] === fast;
    }),
    { numRuns: 5_000 },
  );
  t.true(accepted > 100, `the property saw ${accepted} accepted bodies`);
  // The bodies clients send are the ones it takes.
  t.is(plainAmount({ amount: 1500 }, 'amount'), 1500);
  t.is(plainAmount({ maxAmount: 100_000_000_000 }, 'maxAmount'), 100_000_000_000);
  t.is(plainAmount({ amount: 100_000_000_001 }, 'amount'), undefined);
  t.is(plainAmount({ amount: 1500, extra: 1 }, 'amount'), undefined);
});

function stubResponse(): http.ServerResponse {
  return new http.ServerResponse(new http.IncomingMessage(new net.Socket()));
}

for (const env of ['development', 'production'] as const) {
  test(`the recorded security headers are helmet's (${env})`, async (t) => {
    const config = { ...testConfig(), env };
    const write = securityHeaderWriter(config);
    if (!write) return t.fail('helmet could not be recorded');
    const byHelmet = stubResponse();
    await new Promise<void>((resolve, reject) =>
      (securityHeaders(config) as unknown as (req: unknown, res: unknown, next: (err?: unknown) => void) => void)({}, byHelmet, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    const recorded = stubResponse();
    write(recorded);
    t.deepEqual(recorded.getHeaders(), byHelmet.getHeaders());
    t.true(Object.keys(recorded.getHeaders()).length >= 10);
    t.is(recorded.hasHeader('strict-transport-security'), env === 'production');
  });
}

test('middleware is run as a promise would: the first next() decides, a later throw is ignored, a late next() is waited for', async (t) => {
  const req = {} as http.IncomingMessage;
  const res = stubResponse();
  const mw = (f: (next: (err?: unknown) => void) => void) => ((_q: unknown, _s: unknown, next: (err?: unknown) => void) => f(next)) as unknown as RequestHandler;
  t.is(runMiddleware(mw((next) => next()), req, res), undefined, 'next() at once: nothing to wait for');
  t.throws(() => runMiddleware(mw((next) => next(new Error('refused'))), req, res), { message: 'refused' });
  t.throws(() => runMiddleware(mw((next) => (next(new Error('first')), next())), req, res), { message: 'first' });
  t.is(runMiddleware(mw((next) => (next(), next(new Error('second')))), req, res), undefined);
  t.is(
    runMiddleware(
      mw((next) => {
        next();
        throw new Error('after next');
      }),
      req,
      res,
    ),
    undefined,
  );
  t.throws(
    () =>
      runMiddleware(
        mw(() => {
          throw new Error('before next');
        }),
        req,
        res,
      ),
    { message: 'before next' },
  );
  let later = false;
  const waited = runMiddleware(mw((next) => setTimeout(() => ((later = true), next(), next(new Error('ignored'))), 20)), req, res);
  t.truthy(waited);
  await waited;
  t.true(later);
  await t.throwsAsync(runMiddleware(mw((next) => setTimeout(() => next(new Error('late')), 5)), req, res)!, { message: 'late' });
});
