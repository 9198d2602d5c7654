import test from 'ava';
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
    env: { ...testEnv(system().env), ENV: 'production', JWT_PRIVATE_KEY: 'x', STRIPE_SECRET_KEY: 'x', STRIPE_WEBHOOK_SECRET: 'x', LIVEKIT_API_KEY: 'x', LIVEKIT_API_SECRET: 'x', DB_PASSWORD: 'x' },
    encoding: 'utf8',
  });
  t.is(res.status, 2);
  t.regex(res.stderr, /refusing/);
});
