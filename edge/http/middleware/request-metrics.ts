import type { RequestHandler } from 'express';
import type { EdgeMetrics } from '../metrics.js';

/** Records rate and latency by route pattern (never the raw URL: bounded labels). */
export function requestMetrics(metrics: EdgeMetrics): RequestHandler {
  return (req, res, next) => {
    const end = process.hrtime.bigint();
    res.on('finish', () => {
      const route = (res.locals.routePattern as string | undefined) ?? (req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched');
      const labels = { method: req.method, route, status: String(res.statusCode) };
      metrics.requests.inc(labels);
      metrics.duration.observe(labels, Number(process.hrtime.bigint() - end) / 1e9);
    });
    next();
  };
}
