import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { useSystem } from '../helpers/system.js';
import { testEnv } from '../helpers/config.js';

const system = useSystem(test);

function seed(env: Record<string, string>) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'scripts/seed.ts'], {
    env: { ...env, ENV: 'development', SEED_PRODUCTS: '120' },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

test('npm run seed gives a new user a working catalog, once', async (t) => {
  const sys = system();
  const first = seed(testEnv(sys.env));
  t.is(first.status, 0, first.stderr);
  t.regex(first.stdout, /120 products/);

  const cats = await sys.api.get('/api/v1/categories');
  t.true(cats.body.data.length >= 15);
  t.is(cats.body.data.filter((c: { parentId: string | null }) => c.parentId === null).length, 5);
  const page = await sys.api.get('/api/v1/products?limit=20');
  t.is(page.body.data.length, 20);
  t.truthy(page.body.nextCursor);
  const search = await sys.api.get('/api/v1/products?q=vintage');
  t.true(search.body.data.length > 0);
  const login = await sys.api.post('/api/v1/auth/login', { email: 'seller1@seed.blytz.dev', password: 'blytz-dev-password' });
  t.is(login.status, 200);
  t.is(login.body.user.role, 'seller');

  const again = seed(testEnv(sys.env));
  t.is(again.status, 0);
  t.regex(again.stdout, /already seeded/);
  t.is(Number((await sys.db('products').count<{ count: string }[]>('* as count'))[0]!.count), 120);
});

test('seed refuses a production database', (t) => {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/seed.ts'], {
    env: { ...testEnv(system().env), ENV: 'production', JWT_PRIVATE_KEY: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), STRIPE_SECRET_KEY: 'x', STRIPE_WEBHOOK_SECRET: 'x', LIVEKIT_API_KEY: 'x', LIVEKIT_API_SECRET: 'x', DB_PASSWORD: 'x' },
    encoding: 'utf8',
  });
  t.is(res.status, 2);
  t.regex(res.stderr, /refusing/);
});

test('seed refuses a product count that is not a whole number in range', async (t) => {
  const sys = system();
  for (const value of ['abc', '0', '-5', '2.5', '1e9']) {
    const res = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/seed.ts'], {
      env: { ...testEnv(sys.env), ENV: 'development', SEED_PRODUCTS: value },
      encoding: 'utf8',
      timeout: 60_000,
    });
    t.is(res.status, 2, `${value}: ${res.stdout}${res.stderr}`);
    t.regex(res.stderr, /^seed: SEED_PRODUCTS must be a whole number from 1 to 100000/, value);
  }
});
