import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,100}$/;

/** The client's X-Request-Id when it is sane, else a new one; echoed in the response. */
export function assignRequestId(req: IncomingMessage, res: ServerResponse): string {
  const incoming = req.headers['x-request-id'];
  const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader('X-Request-Id', id);
  return id;
}

/** The level a finished request is logged at: 5xx error, 4xx info, the rest debug. */
export function requestLogLevel(status: number, failed: boolean): 'error' | 'info' | 'debug' {
  return failed || status >= 500 ? 'error' : status >= 400 ? 'info' : 'debug';
}
