import type { Knex } from 'knex';
import type { Logger } from '../logging.js';

export interface ClusterNode {
  host: string;
  port: number;
}

/** The part of a mariadb callback connection this module touches. */
interface RawConnection {
  query(sql: string, cb: (err: Error | null, rows?: { ready?: string }[]) => void): void;
  end(cb: () => void): void;
}

/** The part of knex's client this module replaces. */
interface FailoverClient {
  connectionSettings: Record<string, unknown>;
  acquireRawConnection(): Promise<RawConnection>;
}

const NOT_READY = 'WSREP_NOT_READY';

/**
 * New connections of this knex instance go to the first of `nodes` that
 * answers and, on a Galera node, is ready (part of the primary component and
 * synced: a joining or isolated node accepts connections but refuses queries).
 * Each new connection starts again from the first node, so a node's own
 * database server gets its connections back once it has rejoined. Connections
 * already open stay where they are; those to a stopped server fail and the
 * pool replaces them.
 */
export function failOverBetween(knex: Knex, nodes: ClusterNode[], log?: Logger): void {
  const client = knex.client as unknown as FailoverClient;
  const connect = client.acquireRawConnection.bind(client);
  const base = client.connectionSettings;
  let current = 0;
  client.acquireRawConnection = async () => {
    let lastError: unknown;
    for (const [index, node] of nodes.entries()) {
      // knex's driver reads the settings synchronously when it creates the connection.
      client.connectionSettings = { ...base, host: node.host, port: node.port };
      const connecting = connect();
      client.connectionSettings = base;
      try {
        const conn = await connecting;
        await prepareClusterConnection(conn);
        if (index !== current) log?.warn({ database: `${node.host}:${node.port}`, previous: `${nodes[current]!.host}:${nodes[current]!.port}` }, 'database connections now go to another cluster node');
        current = index;
        return conn;
      } catch (error) {
        lastError = error;
        log?.debug({ database: `${node.host}:${node.port}`, err: error }, 'cluster node not usable; trying the next');
      }
    }
    throw lastError;
  };
}

function run(conn: RawConnection, sql: string): Promise<{ wsrep?: number; ready?: string }[]> {
  return new Promise((resolve, reject) => conn.query(sql, (err, rows) => (err ? reject(err) : resolve(rows ?? []))));
}

/**
 * Fail (and close) a connection to a Galera node that would refuse queries,
 * and make reads on the others causal: Galera applies another node's commits
 * asynchronously, so without `wsrep_sync_wait` a session row written through
 * one node may not yet be readable through the next request's node. A server
 * without Galera passes unchanged.
 */
async function prepareClusterConnection(conn: RawConnection): Promise<void> {
  const [state] = await run(conn, "SELECT @@wsrep_on AS wsrep, (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_READY') AS ready");
  if (!state?.wsrep) return;
  if (state.ready !== 'ON') {
    await new Promise<void>((resolve) => conn.end(resolve));
    throw Object.assign(new Error('the Galera node is not ready (not synced with the primary component)'), { code: NOT_READY });
  }
  // 1: reads wait until this node has applied every commit the cluster had made when they started.
  await run(conn, 'SET SESSION wsrep_sync_wait = 1');
}
