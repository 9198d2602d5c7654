import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import net from 'node:net';
import { ConfigError, loadConfig, PRODUCTION_SECRETS } from '../../lib/env.js';
import { knexConfig } from '../../db/client.js';
import { loadKeys } from '../../lib/jwt.js';
import { testEnv, uniqueId } from '../helpers/config.js';
import { spawnNode } from '../helpers/process.js';

const SECRETS: Record<(typeof PRODUCTION_SECRETS)[number], string> = {
  JWT_PRIVATE_KEY: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  STRIPE_SECRET_KEY: 'sk_live_x',
  STRIPE_WEBHOOK_SECRET: 'whsec_x',
  LIVEKIT_API_KEY: 'lk_key',
  LIVEKIT_API_SECRET: 'lk_secret_lk_secret_lk_secret_00',
};

test('defaults in development', (t) => {
  const c = loadConfig({});
  t.is(c.env, 'development');
  t.is(c.port, 8080);
  t.is(c.wsPort, 8081);
  t.is(c.db.poolMax, 25);
  t.is(c.bodyLimit, '100kb');
  t.is(c.rateLimits.generalPerMinute, 100);
  t.is(c.rateLimits.authPerMinute, 20);
  t.is(c.db.database, 'blytz');
  t.is(c.redis.prefix, 'blytz');
  t.false(c.db.connection && typeof c.db.connection === 'object' ? c.db.connection.ssl : true);
  // Development has working stand-ins for the production secrets.
  t.truthy(c.stripe.secretKey);
  t.truthy(c.livekit.apiKey);
  t.true(Object.isFrozen(c) && Object.isFrozen(c.db) && Object.isFrozen(c.rateLimits));
});

test('numbers come from the environment as strings', (t) => {
  const c = loadConfig({ PORT: '3000', WS_PORT: '3001', DB_POOL_MAX: '7', RATE_LIMIT_GENERAL_PER_MIN: '5', BODY_LIMIT: '1mb' });
  t.is(c.port, 3000);
  t.is(c.wsPort, 3001);
  t.is(c.db.poolMax, 7);
  t.is(loadConfig({ DB_RANDOM_PAGE_COST: '2.5' }).db.randomPageCost, 2.5);
  t.is(c.rateLimits.generalPerMinute, 5);
  t.is(c.bodyLimit, '1mb');
});

test('a bad value throws ConfigError naming the variable', (t) => {
  for (const [name, value] of [
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['WS_PORT', '-1'],
    ['ENV', 'staging'],
    ['DB_POOL_MAX', '0'],
    ['BODY_LIMIT', 'lots'],
    ['DB_NAME', 'x; drop database'],
    ['DB_RANDOM_PAGE_COST', 'fast'],
    ['DB_RANDOM_PAGE_COST', '0'],
    ['DB_RANDOM_PAGE_COST', '1 -c fsync=off'],
  ] as const) {
    const err = t.throws(() => loadConfig({ [name]: value }), { instanceOf: ConfigError }, `${name}=${value}`);
    t.true(err?.message.includes(name), err?.message);
  }
});

test('production without secrets throws, naming each missing variable', (t) => {
  const err = t.throws(() => loadConfig({ ENV: 'production' }), { instanceOf: ConfigError });
  for (const name of PRODUCTION_SECRETS) t.true(err!.message.includes(name), `${name} in: ${err!.message}`);
  t.deepEqual([...PRODUCTION_SECRETS].sort(), ['JWT_PRIVATE_KEY', 'LIVEKIT_API_KEY', 'LIVEKIT_API_SECRET', 'STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET']);
});

test('NODE_ENV=production means production: secrets required; an ENV that says otherwise is refused', (t) => {
  const err = t.throws(() => loadConfig({ NODE_ENV: 'production' }), { instanceOf: ConfigError });
  for (const name of PRODUCTION_SECRETS) t.true(err!.message.includes(name), `${name} in: ${err!.message}`);
  t.is(loadConfig({ NODE_ENV: 'production', DB_PASSWORD: 'pw', ...SECRETS }).env, 'production');
  t.is(loadConfig({ NODE_ENV: 'production', ENV: 'production', DB_PASSWORD: 'pw', ...SECRETS }).env, 'production');
  for (const env of ['development', 'test']) {
    const contradiction = t.throws(() => loadConfig({ NODE_ENV: 'production', ENV: env, DB_PASSWORD: 'pw', ...SECRETS }), { instanceOf: ConfigError });
    t.true(contradiction!.message.includes(`ENV=${env}`) && contradiction!.message.includes('NODE_ENV=production'), contradiction!.message);
  }
  // Any other NODE_ENV (ava sets "test") leaves ENV's default alone.
  t.is(loadConfig({ NODE_ENV: 'test' }).env, 'development');
  t.is(loadConfig({ NODE_ENV: 'development' }).env, 'development');
});

test('production names exactly the secret that is missing, and loads when all are set', (t) => {
  const base = { ENV: 'production', DB_PASSWORD: 'pw', ...SECRETS };
  const ok = loadConfig(base);
  t.is(ok.env, 'production');
  t.is(ok.stripe.secretKey, 'sk_live_x');
  t.is(ok.livekit.apiSecret, SECRETS.LIVEKIT_API_SECRET);
  for (const name of PRODUCTION_SECRETS) {
    const source: Record<string, string> = { ...base };
    delete source[name];
    const err = t.throws(() => loadConfig(source), { instanceOf: ConfigError });
    const missing = err!.message.split(':').pop()!;
    t.is(missing.trim(), name, err!.message);
  }
  // The database credentials are required too.
  const noDb: Record<string, string> = { ...base };
  delete noDb.DB_PASSWORD;
  t.throws(() => loadConfig(noDb), { instanceOf: ConfigError, message: /DATABASE_URL/ });
  t.notThrows(() => loadConfig({ ...noDb, DATABASE_URL: 'postgres://u:p@db.internal:5432/blytz' }));
});

test('DATABASE_URL overrides DB_*', (t) => {
  const c = loadConfig({
    DATABASE_URL: 'postgres://app:secret@db.example.com:6543/prod_db',
    DB_HOST: 'ignored-host',
    DB_PORT: '1111',
    DB_NAME: 'ignored_db',
  });
  t.is(c.db.connection, 'postgres://app:secret@db.example.com:6543/prod_db');
  t.is(c.db.database, 'prod_db');
  const k = knexConfig(c).connection as { connectionString?: string; host?: string };
  t.is(k.host, undefined);
  const url = new URL(k.connectionString!);
  t.is(url.hostname, 'db.example.com');
  t.is(url.port, '6543');
  t.is(url.pathname, '/prod_db');
  // Without it the DB_* settings are used.
  const d = loadConfig({ DB_HOST: 'pg.local', DB_PORT: '1111', DB_NAME: 'other_db' });
  t.like(d.db.connection as object, { host: 'pg.local', port: 1111, database: 'other_db' });
  t.is(d.db.database, 'other_db');
  t.throws(() => loadConfig({ DATABASE_URL: 'mysql://x@y/z' }), { instanceOf: ConfigError, message: /DATABASE_URL/ });
});

test('the planner setting goes in the startup options, after a DATABASE_URL\'s own; off sends none', (t) => {
  const options = (env: Record<string, string>) => {
    const k = knexConfig(loadConfig(env)).connection as { connectionString?: string; options?: string };
    return { options: k.options, url: k.connectionString };
  };
  t.is(options({}).options, '-c random_page_cost=1.1');
  t.is(options({ DB_RANDOM_PAGE_COST: '2' }).options, '-c random_page_cost=2');
  t.is(options({ DB_RANDOM_PAGE_COST: 'off' }).options, undefined);
  t.is(options({ DATABASE_URL: 'postgres://app:pw@db.example.com/prod' }).options, '-c random_page_cost=1.1');
  // node-postgres would let the URL's options replace ours: they are merged instead.
  const merged = options({ DATABASE_URL: 'postgres://app:pw@db.example.com/prod?sslmode=require&options=-c%20search_path%3Dapp' });
  t.is(merged.options, '-c search_path=app -c random_page_cost=1.1');
  t.false(new URL(merged.url!).searchParams.has('options'));
  t.is(new URL(merged.url!).searchParams.get('sslmode'), 'require');
  t.is(options({ DATABASE_URL: 'postgres://app:pw@db.example.com/prod?options=-c%20search_path%3Dapp', DB_RANDOM_PAGE_COST: 'off' }).options, '-c search_path=app');
});

test('a PEM stored on one line with literal "\\n" is unescaped', (t) => {
  const pem = SECRETS.JWT_PRIVATE_KEY;
  const oneLine = pem.replace(/\n/g, '\\n');
  t.false(oneLine.includes('\n'));
  const c = loadConfig({ JWT_PRIVATE_KEY: oneLine });
  t.is(c.jwt.privateKey, pem);
  t.notThrows(() => loadKeys(c), 'the unescaped key is usable');
  // A PEM with real newlines is kept as is.
  t.is(loadConfig({ JWT_PRIVATE_KEY: pem }).jwt.privateKey, pem);

  const pub1 = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const pub2 = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const prev = loadConfig({ JWT_PREVIOUS_PUBLIC_KEYS: (pub1 + pub2).replace(/\n/g, '\\n') }).jwt.previousPublicKeys;
  t.deepEqual(prev.map((p) => p.trim()), [pub1.trim(), pub2.trim()]);
});

test('a signing key or previous key that is not a usable RSA PEM is refused at start-up, naming its variable', (t) => {
  const error = (env: Record<string, string>) => t.throws(() => loadConfig(env), { instanceOf: ConfigError })?.message ?? '';
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsaPublic = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  t.regex(error({ JWT_PRIVATE_KEY: 'not a key' }), /^JWT_PRIVATE_KEY is not a private key/);
  t.regex(error({ JWT_PRIVATE_KEY: rsaPublic }), /^JWT_PRIVATE_KEY is not a private key/, 'a public key where the private one goes');
  t.regex(error({ JWT_PRIVATE_KEY: ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }), /^JWT_PRIVATE_KEY must be an RSA key \(RS256\), not ec/);
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  t.regex(error({ JWT_PRIVATE_KEY: small }), /^JWT_PRIVATE_KEY must be at least 2048 bits, not 1024/, 'jsonwebtoken would refuse to sign with it');
  const broken = rsaPublic.replace(/\n[A-Za-z0-9+/]{20}/, '\n!!!!');
  t.regex(error({ JWT_PREVIOUS_PUBLIC_KEYS: broken }), /^JWT_PREVIOUS_PUBLIC_KEYS: key 1 is not a PEM public key/);
  t.regex(error({ JWT_PREVIOUS_PUBLIC_KEYS: rsaPublic + ec.publicKey.export({ type: 'spki', format: 'pem' }).toString() }), /^JWT_PREVIOUS_PUBLIC_KEYS: key 2 must be an RSA key/);
  t.regex(error({ JWT_PREVIOUS_PUBLIC_KEYS: 'ssh-rsa AAAA' }), /^JWT_PREVIOUS_PUBLIC_KEYS holds no PEM public key/);
  // What is usable still loads.
  t.notThrows(() => loadConfig({ JWT_PRIVATE_KEY: SECRETS.JWT_PRIVATE_KEY, JWT_PREVIOUS_PUBLIC_KEYS: rsaPublic }));
  t.notThrows(() => loadConfig({ JWT_PREVIOUS_PUBLIC_KEYS: '' }));
});

const ROLES = [
  ['web', 'edge/http/main.ts'],
  ['worker', 'workers/main.ts'],
  ['broadcaster', 'edge/ws/main.ts'],
] as const;

for (const [role, entry] of ROLES) {
  test.serial(`${role}: production without secrets exits 1 with one line naming them`, async (t) => {
    const p = spawnNode(entry, testEnv({ ENV: 'production' }));
    t.teardown(() => p.kill());
    const { code } = await p.waitForExit(45_000);
    t.is(code, 1);
    const lines = p.stderr().split('\n').filter(Boolean);
    t.is(lines.length, 1, p.stderr());
    t.true(lines[0]!.startsWith(`${role}: `), lines[0]);
    for (const name of PRODUCTION_SECRETS) t.true(lines[0]!.includes(name), `${name} in: ${lines[0]}`);
    t.false(/\bat .+:\d+:\d+/.test(lines[0]!), 'no stack trace');
    t.is(p.stdout(), '');
  });

  test.serial(`${role}: PORT=abc exits 1 with one clear line`, async (t) => {
    const p = spawnNode(entry, testEnv({ PORT: 'abc' }));
    t.teardown(() => p.kill());
    const { code } = await p.waitForExit(45_000);
    t.is(code, 1);
    const lines = p.stderr().split('\n').filter(Boolean);
    t.is(lines.length, 1, p.stderr());
    t.regex(lines[0]!, new RegExp(`^${role}: .*"PORT" must be a number`));
    t.is(p.stdout(), '');
  });
}

test.serial('worker: a WORKER_PORT already in use exits 1 at start, before any worker runs, saying so', async (t) => {
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => taken.close());
  const port = (taken.address() as net.AddressInfo).port;
  // A database every Postgres has (the default 'blytz' exists only once `npm start` ran), and a prefix of its own.
  const p = spawnNode('workers/main.ts', testEnv({ WORKER_PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', DB_NAME: 'postgres', REDIS_PREFIX: uniqueId('port_in_use') }));
  t.teardown(() => p.kill());
  const { code } = await p.waitForExit(45_000);
  t.is(code, 1);
  t.regex(p.stdout(), /worker failed to start/);
  t.regex(p.stdout(), /EADDRINUSE/);
  t.notRegex(p.stdout(), /workers started/);
});
