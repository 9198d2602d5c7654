import Joi from 'joi';
import type { Role } from '../../../db/tables.js';
import type { EdgeDeps } from '../deps.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { email, password, sessionSchema, text, userSchema } from '../schemas.js';
import * as auth from '../services/auth.js';

const withUser = sessionSchema.keys({ user: userSchema });
const refreshBody = Joi.object<{ refreshToken: string }>({ refreshToken: Joi.string().max(200).required() });

export function authRoutes(deps: EdgeDeps): AnyRoute[] {
  return [
    defineRoute({
      method: 'post',
      path: '/auth/register',
      tag: 'auth',
      summary: 'Create an account (buyer or seller) and start a session',
      body: Joi.object<{ email: string; password: string; name: string; role?: Exclude<Role, 'admin'> }>({
        email: email().required(),
        password: password().required(),
        name: text(100).required(),
        role: Joi.string().valid('buyer', 'seller'),
      }),
      responses: { 201: { description: 'created', schema: withUser }, 409: { description: 'email already registered' } },
      handler: async ({ body, res }) => {
        const out = await auth.register(deps, {
          email: body.email.toLowerCase(),
          password: body.password,
          name: body.name.trim(),
          role: body.role ?? 'buyer',
        });
        res.status(201).json(out);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/auth/login',
      tag: 'auth',
      summary: 'Sign in; the same 401 for an unknown email and a wrong password',
      body: Joi.object<{ email: string; password: string }>({
        email: Joi.string().max(254).required(),
        password: Joi.string().max(128).required(),
      }),
      responses: { 200: { description: 'signed in', schema: withUser }, 401: { description: 'invalid email or password' } },
      handler: async ({ body, res }) => {
        res.json(await auth.login(deps, { email: body.email.toLowerCase(), password: body.password }));
      },
    }),
    defineRoute({
      method: 'post',
      path: '/auth/refresh',
      tag: 'auth',
      summary: 'Rotate a refresh token; reusing a used one revokes its whole session',
      body: refreshBody,
      responses: { 200: { description: 'new tokens', schema: sessionSchema }, 401: { description: 'invalid, expired or reused token' } },
      handler: async ({ body, res }) => {
        res.json(await auth.refresh(deps, body.refreshToken));
      },
    }),
    defineRoute({
      method: 'get',
      path: '/auth/profile',
      tag: 'auth',
      summary: 'The signed-in user',
      auth: 'user',
      responses: { 200: { description: 'the user', schema: Joi.object({ user: userSchema }) } },
      handler: async ({ user, res }) => {
        res.json({ user: await auth.profile(deps, user!.id) });
      },
    }),
    defineRoute({
      method: 'post',
      path: '/auth/change-password',
      tag: 'auth',
      summary: "Change the password; every other session's refresh tokens are revoked",
      auth: 'user',
      body: Joi.object<{ currentPassword: string; newPassword: string }>({
        currentPassword: Joi.string().max(128).required(),
        newPassword: password().required(),
      }),
      responses: { 204: { description: 'changed' } },
      handler: async ({ user, body, res }) => {
        await auth.changePassword(deps, user!, body);
        res.status(204).end();
      },
    }),
    defineRoute({
      method: 'post',
      path: '/auth/logout',
      tag: 'auth',
      summary: 'End the session the refresh token belongs to',
      auth: 'user',
      body: refreshBody,
      responses: { 204: { description: 'signed out' } },
      handler: async ({ user, body, res }) => {
        await auth.logout(deps, user!.id, body.refreshToken);
        res.status(204).end();
      },
    }),
  ] as AnyRoute[];
}
