/**
 * The HTTP endpoint Prometheus scrapes: GET /metrics, nothing else. It binds before the volume is
 * opened and mounted, so a port in use is refused in one line with nothing mounted; until the
 * mount is ready (and once it closes) /metrics answers 503.
 */
import http from 'node:http';
import createDebug from 'debug';
import { VolumeError, errnoCode } from '../errors.js';
import { formatMetricsAddress, type MetricsAddress } from './address.js';

const debug = createDebug('salvo:metrics');

/** What the endpoint serves: prom-client's Registry fits. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export class MetricsServer {
  private source: MetricsSource | null = null;
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly server: http.Server,
    /** Where it listens, as a scrape target names it. */
    readonly address: string,
  ) {}

  static async listen(address: MetricsAddress): Promise<MetricsServer> {
    const server = http.createServer();
    const where = formatMetricsAddress(address);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: address.host, port: address.port }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      throw listenError(where, err);
    });
    const metrics = new MetricsServer(server, where);
    server.on('request', (req, res) => void metrics.answer(req, res));
    // A scraper that holds its connection open must not keep the process alive past the unmount.
    server.unref();
    debug('listening on %s', where);
    return metrics;
  }

  /** Starts serving `source` (the mount is ready); null goes back to 503 (it is closing). */
  serve(source: MetricsSource | null): void {
    this.source = source;
  }

  /** Stops listening and drops the scrapers' connections; safe to call more than once. */
  close(): Promise<void> {
    this.source = null;
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }

  private async answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') return reply(res, 404, 'not found: salvo serves /metrics\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'GET /metrics\n', { allow: 'GET, HEAD' });
    const source = this.source;
    if (!source) return reply(res, 503, 'salvo: the mount is not serving (starting or stopping)\n');
    try {
      const body = await source.metrics();
      reply(res, 200, req.method === 'HEAD' ? '' : body, { 'content-type': source.contentType });
    } catch (err) {
      // A collector that throws is a bug, not a reason to stop the mount: the scrape fails, loudly.
      debug('collecting metrics failed: %s', (err as Error).stack);
      reply(res, 500, `salvo: collecting metrics failed: ${(err as Error).message}\n`);
    }
  }
}

function reply(res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(body);
}

function listenError(where: string, err: unknown): VolumeError {
  const code = errnoCode(err);
  const what = `--metrics ${where}`;
  switch (code) {
    case 'EADDRINUSE':
      return VolumeError.badInput(`${what}: the address is in use`, 'pick another port, or stop what listens there (ss -ltnp)');
    case 'EACCES':
      return VolumeError.badInput(`${what}: not allowed to listen there`, 'ports below 1024 need root; pick a port above 1024, e.g. 9464');
    case 'EADDRNOTAVAIL':
      return VolumeError.badInput(`${what}: no interface of this machine has that address`, 'use 127.0.0.1, 0.0.0.0 or an address `ip addr` shows');
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return VolumeError.badInput(`${what}: the host name does not resolve`, 'use an IP address, e.g. 127.0.0.1');
    default:
      return VolumeError.badInput(`${what}: cannot listen: ${(err as Error).message}`, 'pick another address, e.g. 127.0.0.1:9464');
  }
}
