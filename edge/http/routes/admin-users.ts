import Joi from 'joi';
import { findUserById, setUserRole, toPublicUser } from '../../../db/operations/users.js';
import type { Role } from '../../../db/tables.js';
import { forbidden, notFound } from '../../../lib/errors.js';
import type { EdgeDeps } from '../deps.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { userSchema, uuid } from '../schemas.js';

export function adminUserRoutes(deps: EdgeDeps): AnyRoute[] {
  return [
    defineRoute<{ role: Role }, Record<string, never>, { id: string }>({
      method: 'put',
      path: '/admin/users/:id/role',
      tag: 'admin',
      summary: "Set a user's role (admins only); takes effect at the user's next token refresh",
      roles: ['admin'],
      params: Joi.object({ id: uuid().required() }),
      body: Joi.object({ role: Joi.string().valid('buyer', 'seller', 'admin').required() }),
      responses: { 200: { description: 'the user', schema: Joi.object({ user: userSchema }) }, 404: { description: 'no such user' } },
      handler: async ({ params, body, user: caller, res }) => {
        // The caller's role as it is now, not as their token says: a role change
        // reaches a token only at its refresh, and an admin demoted meanwhile
        // could otherwise undo it (or demote whoever demoted them).
        if ((await findUserById(deps.db, caller!.id))?.role !== 'admin') throw forbidden('your role may not do this');
        const user = await findUserById(deps.db, params.id);
        if (!user) throw notFound('user');
        await setUserRole(deps.db, user.id, body.role);
        res.json({ user: toPublicUser({ ...user, role: body.role }) });
      },
    }),
  ] as AnyRoute[];
}
