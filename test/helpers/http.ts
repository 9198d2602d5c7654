/** A small JSON client over real HTTP (Node's fetch). */
// Response bodies are whatever the server sent; tests assert on their fields.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;
export interface ApiResponse<T = Json> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export type RequestOptions = {
  token?: string;
  headers?: Record<string, string>;
  /** A raw body string (sent as is); otherwise `json` is serialized. */
  raw?: string;
  json?: unknown;
  redirect?: 'manual' | 'follow' | 'error';
};

export function client(baseUrl: string) {
  async function request<T = Json>(method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | undefined;
    if (opts.raw !== undefined) body = opts.raw;
    else if (opts.json !== undefined) body = JSON.stringify(opts.json);
    if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    const res = await fetch(baseUrl + path, { method, headers, body, redirect: opts.redirect ?? 'manual' });
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  }
  return {
    request,
    get: <T = Json>(path: string, opts?: RequestOptions) => request<T>('GET', path, opts),
    post: <T = Json>(path: string, json?: unknown, opts?: RequestOptions) => request<T>('POST', path, { ...opts, json }),
    put: <T = Json>(path: string, json?: unknown, opts?: RequestOptions) => request<T>('PUT', path, { ...opts, json }),
    del: <T = Json>(path: string, opts?: RequestOptions) => request<T>('DELETE', path, opts),
  };
}

export type Client = ReturnType<typeof client>;

/**
 * fetch options for a body sent chunked (a stream has no known length, so no
 * Content-Length): the bid fast path leaves such requests to Express.
 */
export function chunkedBody(text: string | Uint8Array): { body: ReadableStream<Uint8Array>; duplex: 'half' } {
  return {
    body: new ReadableStream({
      start(c) {
        c.enqueue(typeof text === 'string' ? new TextEncoder().encode(text) : text);
        c.close();
      },
    }),
    duplex: 'half',
  };
}
