import { describe, expect, it } from "vitest";
import { labelArg, portArg, snapshotRefArg, volumeSizeArg } from "../../cli/args.js";
import { type NodeHealth, sharedFilesystems } from "../../cli/cluster-status.js";
import { invocation, nextSteps } from "../../cli/commands/cluster.js";
import { CliError, EXIT_USAGE } from "../../cli/failures.js";
import { formatAge } from "../../cli/format.js";
import { formatDetails, formatTable } from "../../cli/output.js";
import { clusterVolumeTable, sharedFilesystemLines, volumeDescription } from "../../cli/views.js";

describe("formatTable", () => {
  it("upper-cases headers and aligns columns with spaces, without trailing blanks", () => {
    const table = formatTable(
      ["name", "size", "age"],
      [
        ["db", "10 GiB", "5m"],
        ["scratch-volume", "64 MiB", "3d"],
      ],
    );
    expect(table).toBe(
      ["NAME             SIZE     AGE", "db               10 GiB   5m", "scratch-volume   64 MiB   3d"].join(
        "\n",
      ),
    );
  });

  it("prints only the header for no rows", () => {
    expect(formatTable(["name", "size"], [])).toBe("NAME   SIZE");
  });
});

describe("formatDetails", () => {
  it("aligns values after the longest key", () => {
    expect(
      formatDetails([
        ["Name", "db"],
        ["Allocated", "4 MiB"],
      ]),
    ).toBe("Name:       db\nAllocated:  4 MiB");
  });
});

describe("formatAge", () => {
  const now = Date.parse("2026-01-10T12:00:00Z");
  const ago = (seconds: number) => formatAge(new Date(now - seconds * 1000), now);

  it("reads like kubectl's ages", () => {
    expect(ago(0)).toBe("0s");
    expect(ago(119)).toBe("119s");
    expect(ago(192)).toBe("3m12s");
    expect(ago(600)).toBe("10m");
    expect(ago(5 * 3600 + 20 * 60)).toBe("5h20m");
    expect(ago(30 * 3600)).toBe("30h");
    expect(ago(4 * 86400 + 6 * 3600)).toBe("4d6h");
    expect(ago(12 * 86400)).toBe("12d");
    expect(ago(3 * 365 * 86400)).toBe("3y");
  });

  it("shows a time slightly in the future (clock skew) as 0s", () => {
    expect(ago(-5)).toBe("0s");
  });
});

/** Every argument error is a usage error (exit 2) whose message quotes the bad input. */
function usageMessage(parse: () => unknown): string {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(EXIT_USAGE);
    return (error as CliError).message;
  }
  throw new Error("expected a usage error");
}

describe("argument parsing", () => {
  it("parses volume sizes and refuses impossible ones", () => {
    expect(volumeSizeArg("10GiB")).toBe(10 * 1024 ** 3);
    expect(volumeSizeArg("512M")).toBe(512 * 1000 ** 2);
    expect(volumeSizeArg("512Mi")).toBe(512 * 1024 ** 2);
    expect(usageMessage(() => volumeSizeArg("10G"))).toBe(
      'invalid size "10G": size must be a multiple of 4 KiB (10G is 10000000000 bytes; 10Gi is 10 GiB)',
    );
    expect(usageMessage(() => volumeSizeArg("0"))).toBe('invalid size "0": size must be greater than 0');
    expect(usageMessage(() => volumeSizeArg("1.5k"))).toMatch(/^invalid size "1.5k": .*multiple of 4 KiB/);
    expect(usageMessage(() => volumeSizeArg("65TiB"))).toMatch(/at most 64 TiB/);
    expect(usageMessage(() => volumeSizeArg("big"))).toMatch(/^invalid size "big"/);
  });

  it("splits VOLUME@SNAPSHOT and names a malformed reference", () => {
    expect(snapshotRefArg("db@before-upgrade")).toEqual({ volume: "db", snapshot: "before-upgrade" });
    for (const bad of ["db", "@s", "db@", "a@b@c", "d b@s"]) {
      expect(usageMessage(() => snapshotRefArg(bad))).toBe(
        `invalid snapshot reference "${bad}": use VOLUME@SNAPSHOT, e.g. data@before-upgrade`,
      );
    }
  });

  it("collects repeated labels and checks them", () => {
    expect(labelArg("tier=gold", labelArg("app=pg"))).toEqual({ app: "pg", tier: "gold" });
    expect(labelArg("empty=")).toEqual({ empty: "" });
    expect(usageMessage(() => labelArg("novalue"))).toBe(
      'invalid label "novalue": use KEY=VALUE, e.g. app=postgres',
    );
    expect(usageMessage(() => labelArg("bad key=x"))).toMatch(/^invalid label "bad key=x": label keys/);
  });

  it("accepts ports 0-65535 only", () => {
    expect(portArg("0")).toBe(0);
    expect(portArg("10809")).toBe(10809);
    expect(usageMessage(() => portArg("65536"))).toBe('invalid port "65536": use 0-65535');
    expect(usageMessage(() => portArg("-1"))).toBe('invalid port "-1": use 0-65535');
  });
});

describe("volumeDescription", () => {
  it("shows each replica's zone and state, and how far a rebuild or resync has come", () => {
    const now = Date.parse("2026-01-10T12:00:00Z");
    const text = volumeDescription(
      {
        id: "v-1",
        name: "db",
        sizeBytes: 1024 ** 3,
        labels: {},
        createdAt: "2026-01-10T11:00:00Z",
        epoch: 7,
        attachedNode: "node-1",
        nbdUri: "nbd://127.0.0.1:10809/db",
        allocatedBytes: 64 * 1024 ** 2,
        snapshotCount: 0,
        replicas: [
          { replicaId: "r-1", node: "node-1", zone: "local-a", state: "in-sync" },
          {
            replicaId: "r-3",
            node: "node-3",
            zone: "local-c",
            state: "rebuilding",
            rebuild: { kind: "resync", copiedBytes: 12 * 1024 ** 2, totalBytes: 40 * 1024 ** 2 },
          },
        ],
      },
      [],
      now,
    );
    expect(text).toContain("node-1   local-a   in-sync      -                        r-1");
    expect(text).toContain("node-3   local-c   rebuilding   resync 12 MiB / 40 MiB   r-3");
  });
});

describe("the cluster banner", () => {
  const node = (id: string, port: number) => ({
    id,
    zone: "local-a",
    apiUrl: `http://127.0.0.1:${port}`,
    nbdAddress: `127.0.0.1:${port + 1000}`,
    nbdSocket: null,
    dataDir: `/tmp/c/${id}`,
  });
  const file = {
    pid: 1,
    startedAt: "2025-01-01T00:00:00.000Z",
    dynamodb: { endpoint: "http://127.0.0.1:1", table: "strata-state" },
    nodes: [node("node-1", 9410), node("node-2", 9411)],
  };

  it("prints commands that work as pasted: npx strata when npx ran it or it is a project's bin", () => {
    expect(invocation("/p/bin/strata.mjs", "/p", { npm_command: "exec" })).toBe("npx strata");
    expect(invocation("/p/node_modules/.bin/strata", "/p", {})).toBe("npx strata");
    expect(invocation("/usr/local/bin/strata", "/p", {})).toBe("strata");
    expect(invocation("/p/bin/strata.mjs", "/p", {})).toBe("node bin/strata.mjs");

    const steps = nextSteps("npx strata", "/tmp/c", file, []);
    const commands = steps.split("\n").filter((line) => line.startsWith("  "));
    expect(commands.filter((line) => !/^ {2}(nbdinfo|qemu-io) /.test(line))).not.toEqual([]);
    for (const line of commands) expect(line).toMatch(/^ {2}(npx strata|nbdinfo|qemu-io) /);
    expect(steps).toContain("npx strata volume create demo --size 1GiB");
  });

  it("does not suggest creating a volume when there are volumes", () => {
    const steps = nextSteps("npx strata", "/tmp/c", file, ["pg", "scratch"]);
    expect(steps).not.toMatch(/create/i);
    expect(steps).toContain("npx strata volume attach pg");
    expect(steps).toContain("nbdinfo nbd://127.0.0.1:10410/pg");
  });
});

describe("cluster status", () => {
  it("shows that a replica's node is down or unreachable rather than only its recorded state", () => {
    const volume = {
      id: "v1",
      name: "pg",
      sizeBytes: 1024 ** 3,
      epoch: 7,
      attachedNode: "node-1",
      replicas: ["node-1", "node-2", "node-3"].map((node, i) => ({
        replicaId: `r${i}`,
        node,
        state: "in-sync" as const,
      })),
    };
    const table = clusterVolumeTable(
      [volume],
      [
        { id: "node-1", state: "up" },
        { id: "node-2", state: "down" },
        { id: "node-3", state: "unreachable" },
      ],
    );
    expect(table).toMatch(
      /^pg\s+1 GiB\s+node-1\(in-sync\) node-2\(in-sync, node down\) node-3\(in-sync, node unreachable\)\s+7\s+node-1$/m,
    );
  });
});

describe("shared filesystems", () => {
  const health = (id: string, filesystemId: string | undefined, freeBytes: number): NodeHealth => ({
    id,
    zone: "local-a",
    state: "down",
    lastHeartbeat: null,
    apiUrl: "",
    pool: {
      capacityBytes: 100 * 1024 ** 3,
      freeBytes,
      ...(filesystemId === undefined ? {} : { filesystemId }),
    },
    live: null,
    problem: null,
  });

  it("names the nodes whose pools share a filesystem, with its free space once", () => {
    const GiB = 1024 ** 3;
    const shared = sharedFilesystems([
      health("node-1", "host:2049", 79 * GiB),
      health("node-2", "host:2049", 78 * GiB),
      health("node-3", "host:2049", 79 * GiB),
      health("node-4", "other:2049", 10 * GiB),
      health("node-5", undefined, 10 * GiB),
    ]);
    expect(shared).toEqual([{ nodes: ["node-1", "node-2", "node-3"], freeBytes: 78 * GiB }]);
    expect(sharedFilesystemLines(shared)).toEqual([
      "node-1, node-2, node-3 share one filesystem (78 GiB free)",
    ]);
  });
});
