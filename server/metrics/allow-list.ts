import { BlockList, isIP } from 'node:net';

/**
 * Client addresses allowed to read the metrics (config `metrics.allow`):
 * single addresses or CIDR ranges, IPv4 or IPv6. An IPv4 client that reaches
 * a dual-stack socket shows up as `::ffff:a.b.c.d` and is matched as IPv4.
 */
export class AddressAllowList {
  private readonly list = new BlockList();

  constructor(readonly entries: readonly string[]) {
    for (const entry of entries) {
      const [address = '', bits] = entry.split('/');
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.list.addAddress(address, family);
      else this.list.addSubnet(address, Number(bits), family);
    }
  }

  allows(ip: string | null | undefined): boolean {
    if (!ip) return false;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
    const address = mapped ? mapped[1]! : ip;
    const family = isIP(address);
    if (family === 0) return false;
    return this.list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}
