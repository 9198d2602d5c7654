/** Procfile `web`: the HTTP edge. */
import { getConfigOrExit } from '../../lib/env.js';
import { createLogger } from '../../lib/logger.js';
import { installShutdown } from '../../lib/shutdown.js';
import { startEdge } from './server.js';

const config = getConfigOrExit('web');
const logger = createLogger('web', config.logLevel);

try {
  const edge = await startEdge(config, logger);
  // Signals are handled before the log line says the role is up.
  installShutdown(logger, config.shutdownGraceMs, [{ name: 'edge', run: edge.close }]);
  logger.info({ url: edge.url, env: config.env }, 'edge listening');
} catch (err) {
  logger.fatal({ err }, 'edge failed to start');
  process.exit(1);
}
