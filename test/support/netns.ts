import { execFile } from "node:child_process";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/**
 * A little network of Linux network namespaces, one per host, for partition tests: every host's
 * namespace has one interface (eth0) on a bridge in the root namespace, which holds the bridge's
 * address (.1) and so reaches every host, and every host reaches the others and the root.
 *
 * partition(host) cuts a host off the network the way a broken link or a security group does: an
 * nftables table of the bridge family drops every frame to and from the host's port, silently
 * (no RST, no ICMP), so peers notice only by their timeouts. The host's own loopback and Unix
 * sockets keep working, as a node's do when its network goes. heal(host) deletes that table.
 *
 * Everything is named after the creating process's pid (namespaces strata-<pid>-<host>, bridge
 * stb<pid>, veths stv<pid><i>, nft tables strata_<pid>_*), so destroy() removes exactly what this
 * lab made, and create() first sweeps what an earlier test process, now dead, left behind.
 * Needs root and the `ip` (iproute2) and `nft` (nftables) commands.
 */
export class NetnsLab {
  private readonly partitions = new Set<string>();
  private destroyed = false;

  private constructor(
    private readonly tag: string,
    /** The /24's first three octets, e.g. "10.213.41". */
    private readonly prefix: string,
    readonly hosts: readonly string[],
  ) {}

  /** Builds the bridge and one namespace per host; on failure, removes what it made and throws. */
  static async create(hosts: readonly string[]): Promise<NetnsLab> {
    if (hosts.length === 0 || hosts.length > 200) throw new Error("a lab has 1 to 200 hosts");
    for (const host of hosts) {
      if (!/^[a-z0-9]{1,12}$/.test(host)) throw new Error(`host names are 1-12 of [a-z0-9], not "${host}"`);
    }
    await preflight();
    await sweepLeftovers();
    const tag = process.pid.toString(36);
    const lab = new NetnsLab(tag, await freeSubnet(), hosts);
    try {
      await ip("link", "add", lab.bridge, "type", "bridge");
      await ip("addr", "add", `${lab.rootAddress}/24`, "dev", lab.bridge);
      await ip("link", "set", lab.bridge, "up");
      for (const [index, host] of hosts.entries()) {
        const ns = lab.namespace(host);
        await ip("netns", "add", ns);
        await ip("link", "add", lab.veth(host), "type", "veth", "peer", "name", "eth0", "netns", ns);
        await ip("link", "set", lab.veth(host), "master", lab.bridge, "up");
        await ip("-n", ns, "addr", "add", `${lab.prefix}.${10 + index}/24`, "dev", "eth0");
        await ip("-n", ns, "link", "set", "eth0", "up");
        await ip("-n", ns, "link", "set", "lo", "up");
      }
    } catch (error) {
      await lab.destroy();
      throw error;
    }
    return lab;
  }

  /** The root namespace's address on the bridge: where a host reaches servers of the test process. */
  get rootAddress(): string {
    return `${this.prefix}.1`;
  }

  /** The host's address on the bridge. */
  address(host: string): string {
    return `${this.prefix}.${10 + this.indexOf(host)}`;
  }

  namespace(host: string): string {
    this.indexOf(host);
    return `strata-${this.tag}-${host}`;
  }

  /** `command args...` run inside the host's namespace: what to spawn. */
  command(host: string, command: string, args: readonly string[]): { command: string; args: string[] } {
    return { command: "ip", args: ["netns", "exec", this.namespace(host), command, ...args] };
  }

  /** Drops every frame to and from the host, in both directions, from now on. */
  async partition(host: string): Promise<void> {
    const table = this.table(host);
    const port = this.veth(host);
    await nft(`table bridge ${table} {
      chain forward { type filter hook forward priority 0; policy accept; iifname "${port}" drop; oifname "${port}" drop; }
      chain input { type filter hook input priority 0; policy accept; iifname "${port}" drop; }
      chain output { type filter hook output priority 0; policy accept; oifname "${port}" drop; }
    }`);
    this.partitions.add(host);
  }

  /** Lets the host's frames through again; connections that outlived the partition carry on. */
  async heal(host: string): Promise<void> {
    if (!this.partitions.has(host)) return;
    await execFileAsync("nft", ["delete", "table", "bridge", this.table(host)]);
    this.partitions.delete(host);
  }

  /**
   * Removes the nft tables, the namespaces, the veths and the bridge. Never throws: it runs in
   * afterAll, after failures too, and removes as much as it can. Processes still running in a
   * namespace keep it alive (but cut off), so stop them first.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const host of [...this.partitions]) await this.heal(host).catch(() => {});
    for (const host of this.hosts) {
      await ip("netns", "delete", this.namespace(host)).catch(() => {});
      await ip("link", "delete", this.veth(host)).catch(() => {});
    }
    await ip("link", "delete", this.bridge).catch(() => {});
  }

  private get bridge(): string {
    return `stb${this.tag}`;
  }

  private veth(host: string): string {
    return `stv${this.tag}${this.indexOf(host).toString(36)}`;
  }

  private table(host: string): string {
    return `strata_${this.tag}_${host}`;
  }

  private indexOf(host: string): number {
    const index = this.hosts.indexOf(host);
    if (index < 0) throw new Error(`no host "${host}" in this lab (hosts: ${this.hosts.join(", ")})`);
    return index;
  }
}

/** Fails at once, in one sentence, where the lab cannot be built: not root, or a command missing. */
async function preflight(): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new Error("network-namespace tests need root (they create namespaces, veths, a bridge, nft rules)");
  }
  for (const [command, flag, pkg] of [
    ["ip", "-V", "iproute2"],
    ["nft", "--version", "nftables"],
  ] as const) {
    await execFileAsync(command, [flag]).catch(() => {
      throw new Error(`network-namespace tests need \`${command}\`: apt-get install ${pkg}`);
    });
  }
}

async function ip(...args: string[]): Promise<string> {
  try {
    return (await execFileAsync("ip", args)).stdout;
  } catch (error) {
    const failure = error as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(" ")}: ${failure.stderr?.trim() || failure.message}`);
  }
}

async function nft(ruleset: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = execFile("nft", ["-f", "-"], (error, _stdout, stderr) =>
      error ? reject(new Error(`nft -f: ${stderr.trim() || error.message}`)) : resolve(),
    );
    child.stdin!.end(ruleset);
  });
}

/** A 10.213.x.0/24 that no interface of this machine is on. */
async function freeSubnet(): Promise<string> {
  const used = await ip("-4", "-o", "addr", "show");
  const start = process.pid % 250;
  for (let i = 0; i < 250; i++) {
    const prefix = `10.213.${(start + i) % 250}`;
    if (!used.includes(` ${prefix}.`)) return prefix;
  }
  throw new Error("no free 10.213.x.0/24 for the test network");
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Namespaces, bridges and nft tables of earlier labs whose process is gone (a crashed test run). */
async function sweepLeftovers(): Promise<void> {
  const deadTag = (tag: string) => {
    const pid = Number.parseInt(tag, 36);
    return Number.isSafeInteger(pid) && pid !== process.pid && !alive(pid);
  };
  const namespaces = (await ip("netns", "list")).split("\n").map((line) => line.split(" ")[0]!);
  for (const ns of namespaces) {
    const match = /^strata-([0-9a-z]+)-[a-z0-9]+$/.exec(ns);
    if (match && deadTag(match[1]!)) await ip("netns", "delete", ns).catch(() => {});
  }
  const links = (await ip("-o", "link", "show")).split("\n");
  for (const line of links) {
    const match = /^\d+: (stb([0-9a-z]+))[:@]/.exec(line);
    if (match && deadTag(match[2]!)) await ip("link", "delete", match[1]!).catch(() => {});
  }
  const tables = await execFileAsync("nft", ["list", "tables", "bridge"]).then(
    (result) => result.stdout,
    () => "",
  );
  for (const line of tables.split("\n")) {
    const match = /^table bridge (strata_([0-9a-z]+)_[a-z0-9]+)$/.exec(line.trim());
    if (match && deadTag(match[2]!)) {
      await execFileAsync("nft", ["delete", "table", "bridge", match[1]!]).catch(() => {});
    }
  }
}
