/**
 * Bull Board at /admin/queues, admins only. Operators open it in a browser: the
 * /admin/login form checks an admin's email and password and sets an HttpOnly,
 * SameSite=Strict cookie (Secure in production) holding a short-lived token
 * whose audience differs from access tokens (neither works as the other). API
 * clients may use an admin's Bearer access token instead.
 */
import express, { Router, type Request, type RequestHandler } from 'express';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import jwt from 'jsonwebtoken';
import { AppError } from '../../../lib/errors.js';
import { keyForToken, VERIFY_ALGORITHMS } from '../../../lib/jwt.js';
import type { UserRow } from '../../../db/tables.js';
import { findUserById } from '../../../db/operations/users.js';
import { authenticate } from '../services/auth.js';
import type { EdgeDeps } from '../deps.js';
import { errorResponse } from '../middleware/error-handler.js';
import { limiter } from '../middleware/rate-limit.js';

const COOKIE = 'blytz_admin';
const COOKIE_TTL_SECONDS = 8 * 3600;

function cookieAudience(deps: EdgeDeps) {
  return `${deps.config.jwt.audience}:admin-console`;
}

function adminFromCookie(deps: EdgeDeps, req: Request): { id: string; passwordSince: number } | null {
  const token = (req.cookies as Record<string, string> | undefined)?.[COOKIE];
  if (!token) return null;
  const key = keyForToken(deps.keys, token);
  if (!key) return null;
  try {
    const p = jwt.verify(token, key, {
      algorithms: VERIFY_ALGORITHMS,
      issuer: deps.config.jwt.issuer,
      audience: cookieAudience(deps),
    }) as jwt.JwtPayload;
    return p.role === 'admin' && typeof p.sub === 'string' && typeof p.pwd === 'number' ? { id: p.sub, passwordSince: p.pwd } : null;
  } catch {
    return null;
  }
}

const wantsHtml = (req: Request) => (req.headers.accept ?? '').includes('text/html');

/**
 * The console cookie lasts hours, not minutes as an access token does: each
 * request checks that its user is still an admin and that their password is the
 * one it was issued under (`pwd`: when that password was set, in ms; a password
 * changed since, even while the sign-in was being checked, ends it), so a
 * demoted or compromised admin is out at once.
 */
async function stillAdmin(deps: EdgeDeps, cookie: { id: string; passwordSince: number }): Promise<boolean> {
  const user = await findUserById(deps.db, cookie.id);
  return user?.role === 'admin' && user.password_changed_at.getTime() === cookie.passwordSince;
}

export function adminGuard(deps: EdgeDeps): RequestHandler {
  return (req, res, next) => {
    if (req.user) {
      return req.user.role === 'admin' ? next() : next(new AppError('forbidden', 'admins only'));
    }
    const cookie = adminFromCookie(deps, req);
    void (cookie ? stillAdmin(deps, cookie) : Promise.resolve(false)).then((ok) => {
      if (ok) return next();
      if (wantsHtml(req)) return res.redirect(302, '/admin/login');
      next(new AppError('unauthorized', 'admin sign-in required'));
    }, next);
  };
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(message = ''): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Blytz.live operations</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto">
<h1>Blytz.live operations</h1>
${message ? `<p role="alert" style="color:#b00">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/admin/login">
<p><label>Email<br><input name="email" type="email" autocomplete="username" required style="width:100%"></label></p>
<p><label>Password<br><input name="password" type="password" autocomplete="current-password" required style="width:100%"></label></p>
<p><button type="submit">Sign in</button></p></form></body></html>`;
}

export function adminRouter(deps: EdgeDeps): Router {
  const router = Router();
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath('/admin/queues');
  createBullBoard({
    queues: [...deps.producer.queues.values()].map((q) => new BullMQAdapter(q)),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Blytz.live queues' } },
  });
  // Bull Board's own handler answers 500 with the raw error message (a Redis
  // error, say); answer as the API does instead: the client's faults (a malformed
  // %-escape in a path, a body that is not JSON) as 4xx, anything else 500 with
  // an error id that is in the log.
  serverAdapter.setErrorHandler((err) => {
    const out = errorResponse(deps, err, deps.logger.child({ component: 'queue dashboard' }));
    // (Its typings list a few statuses; Express sends any, 413 and 429 included.)
    return { status: out.status as 400, body: out.body };
  });

  router.get('/admin/login', (_req, res) => {
    res.type('html').send(loginPage());
  });
  router.post(
    '/admin/login',
    limiter(deps, 'admin-login', deps.config.rateLimits.authPerMinute, 'ip'),
    express.urlencoded({ extended: false, limit: '2kb' }),
    async (req, res, next) => {
      try {
        const body = (req.body ?? {}) as Record<string, unknown>;
        const email = typeof body.email === 'string' ? body.email.toLowerCase().slice(0, 254) : '';
        const password = typeof body.password === 'string' ? body.password.slice(0, 128) : '';
        // As the API's login: the account's failed-login budget, and the same work for an unknown email.
        let user: UserRow | undefined;
        try {
          user = await authenticate(deps, email, password);
        } catch (err) {
          if (!(err instanceof AppError) || (err.code !== 'unauthorized' && err.code !== 'rate_limited')) throw err;
          if (err.code === 'rate_limited') res.status(429).set(err.headers ?? {});
          else res.status(401);
          res.type('html').send(loginPage(err.code === 'rate_limited' ? 'Too many failed logins for this account; try again later.' : 'Invalid credentials, or not an admin.'));
          return;
        }
        if (user.role !== 'admin') {
          res.status(401).type('html').send(loginPage('Invalid credentials, or not an admin.'));
          return;
        }
        const token = jwt.sign({ role: 'admin', pwd: user.password_changed_at.getTime() }, deps.keys.privateKey!, {
          algorithm: 'RS256',
          keyid: deps.keys.kid,
          issuer: deps.config.jwt.issuer,
          audience: cookieAudience(deps),
          subject: user.id,
          expiresIn: COOKIE_TTL_SECONDS,
        });
        res.cookie(COOKIE, token, {
          httpOnly: true,
          sameSite: 'strict',
          secure: deps.config.env === 'production',
          path: '/admin',
          maxAge: COOKIE_TTL_SECONDS * 1000,
        });
        res.redirect(303, '/admin/queues');
      } catch (err) {
        next(err);
      }
    },
  );
  router.post('/admin/logout', (_req, res) => {
    res.clearCookie(COOKIE, { path: '/admin' });
    res.redirect(303, '/admin/login');
  });
  // The adapter's router is an Express app of its own: without this it would
  // announce itself on every dashboard answer (API.md: no X-Powered-By).
  const board = serverAdapter.getRouter() as express.Express;
  board.disable('x-powered-by');
  router.use('/admin/queues', adminGuard(deps), board as unknown as Router);
  return router;
}
