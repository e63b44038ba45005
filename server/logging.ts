import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs on stdout (systemd's journal or the operator's shipper
 * takes them from there). Credentials never reach a log line: the redaction
 * list covers the places they could appear.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'slidebank' },
      redact: {
        paths: ['password', '*.password', 'req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'],
        censor: '****',
      },
    },
    destination,
  );
}
