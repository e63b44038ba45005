import http from 'node:http';

export interface LoadTarget {
  url: string;
  /** A label to group latencies by (e.g. the kind of Deep Zoom level). */
  group: string;
}

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  perSecond: number;
  bytes: number;
  latency: LatencySummary;
  byGroup: Record<string, LatencySummary>;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * Request every target once, `concurrency` at a time over keep-alive
 * connections, and time each response to its last byte.
 */
export async function runLoad(targets: LoadTarget[], concurrency: number, headers: Record<string, string> = {}): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  const grouped = new Map<string, number[]>();
  let errors = 0;
  let bytes = 0;
  let next = 0;
  const started = performance.now();

  const worker = async () => {
    while (next < targets.length) {
      const target = targets[next++]!;
      const t0 = performance.now();
      const { status, length } = await get(target.url, agent, headers).catch(() => ({ status: 0, length: 0 }));
      const ms = performance.now() - t0;
      if (status !== 200) errors++;
      bytes += length;
      latencies.push(ms);
      if (!grouped.has(target.group)) grouped.set(target.group, []);
      grouped.get(target.group)!.push(ms);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return {
    requests: targets.length,
    errors,
    seconds,
    perSecond: targets.length / seconds,
    bytes,
    latency: summarize(latencies),
    byGroup: Object.fromEntries([...grouped].map(([group, values]) => [group, summarize(values)])),
  };
}

function get(url: string, agent: http.Agent, headers: Record<string, string>): Promise<{ status: number; length: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers }, (res) => {
      let length = 0;
      res.on('data', (chunk: Buffer) => (length += chunk.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, length }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

export function summarize(values: number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? 0 };
}
