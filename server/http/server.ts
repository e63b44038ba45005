import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import { ExitCode, FatalError } from '../errors.js';
import type { Logger } from '../logging.js';

export interface HttpServer {
  server: http.Server;
  port: number;
  url: string;
  /**
   * Stop accepting connections, let in-flight requests finish for up to
   * `timeoutMs`, then cut whatever is left. Resolves when the server is closed.
   */
  close(timeoutMs: number): Promise<{ cut: number }>;
}

export interface ListenOptions {
  port: number;
  host: string;
  log: Logger;
}

export async function listen(app: Koa, { port, host, log }: ListenOptions): Promise<HttpServer> {
  const handle = app.callback();
  // Koa answers its own errors inside the promise the handler returns.
  const server = http.createServer((req, res) => void handle(req, res));
  let inFlight = 0;
  let closing = false;

  server.on('request', (_req, res) => {
    inFlight++;
    res.once('close', () => {
      inFlight--;
      // While draining, a keep-alive connection that just went idle is closed at once.
      if (closing) server.closeIdleConnections();
    });
    if (closing) res.setHeader('Connection', 'close');
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => reject(listenError(error, port, host));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (error) => log.error({ err: error }, 'http server error'));

  const address = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;

  return {
    server,
    port: address.port,
    url: `http://${shownHost}:${address.port}`,
    close(timeoutMs) {
      closing = true;
      return new Promise((resolve) => {
        let cut = 0;
        const timer = setTimeout(() => {
          cut = inFlight;
          if (cut > 0) log.warn({ requests: cut }, 'shutdown timeout: cutting requests still in flight');
          server.closeAllConnections();
        }, timeoutMs);
        server.close(() => {
          clearTimeout(timer);
          resolve({ cut });
        });
        server.closeIdleConnections();
      });
    },
  };
}

function listenError(error: NodeJS.ErrnoException, port: number, host: string): Error {
  switch (error.code) {
    case 'EADDRINUSE':
      return new FatalError(
        ExitCode.network,
        `http: port ${port} on ${host} is already in use. Stop the other process or choose another port with PORT`,
        { cause: error },
      );
    case 'EACCES':
      return new FatalError(
        ExitCode.network,
        `http: not permitted to listen on port ${port}. Ports below 1024 need privileges; use a higher PORT behind nginx`,
        { cause: error },
      );
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new FatalError(
        ExitCode.network,
        `http: cannot listen on ${host}: no such address on this machine. Set SLIDEBANK_HOST to one of its addresses or 0.0.0.0`,
        { cause: error },
      );
    default:
      return error;
  }
}
