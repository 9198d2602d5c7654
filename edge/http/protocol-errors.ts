/**
 * Answers to requests Node's HTTP parser refuses before any handler sees them:
 * malformed framing (two Content-Lengths, Content-Length with Transfer-Encoding,
 * control characters in a header), headers over Node's 16 KB, a request not
 * complete in time, or an `Expect` other than 100-continue. Node's own answers
 * are bare (no body, none of the headers API.md puts on every response); these
 * carry the error envelope and the same security headers as every other answer.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from '../../lib/env.js';
import { securityHeaderRecord } from './middleware/security.js';

const REFUSALS: Record<string, { status: number; code: string; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, code: 'headers_too_large', message: 'request headers too large' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: 'request_timeout', message: 'the request was not received in time' },
};
const MALFORMED = { status: 400, code: 'validation_failed', message: 'malformed HTTP request' };

/** helmet's headers, recorded once; without that record, the two API.md requires. */
const FALLBACK: (readonly [string, string])[] = [
  ['X-Content-Type-Options', 'nosniff'],
  ['X-Frame-Options', 'DENY'],
];

export function answerProtocolErrors(server: http.Server, config: Config): void {
  const headers = securityHeaderRecord(config) ?? FALLBACK;
  const security = headers.map(([name, value]) => `${name}: ${String(value)}\r\n`).join('');
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // As Node's default: answer only when nothing of a response was written yet.
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || (inFlight && inFlight.headersSent)) {
      socket.destroy();
      return;
    }
    const { status, code, message } = REFUSALS[err.code ?? ''] ?? MALFORMED;
    const body = JSON.stringify({ error: { code, message } });
    // Closed once written, as Node's default does: end() alone would keep the
    // socket until the client closes its side.
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n${security}Content-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      () => socket.destroy(),
    );
  });
  // Registering the listener replaces Node's bare 417.
  server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => {
    const body = JSON.stringify({ error: { code: 'expectation_failed', message: 'only Expect: 100-continue is supported' } });
    for (const [name, value] of headers) res.setHeader(name, value);
    res.writeHead(417, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Connection: 'close' }).end(body);
  });
}
