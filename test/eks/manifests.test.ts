import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  CLUSTER_SECRET_VARIABLE,
  DEFAULT_LISTEN,
  DEPLOYED_AGENT_VARIABLES,
} from "../../agent/aws/environment.js";
import { AGENT_NODE_FLAGS } from "../../infra/local/agent-entry.js";
import {
  agentContainer,
  argument,
  argumentVariables,
  loadManifests,
  MANIFEST_DIR,
  manifestOf,
} from "./manifests.js";

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(":") + 1));

describe("the Kubernetes manifests (deploy/kubernetes)", () => {
  it("put everything in strata-system, run as the strata-agent service account", () => {
    const manifests = loadManifests();
    expect(manifests.map((m) => m.kind)).toEqual(["Namespace", "ServiceAccount", "ConfigMap", "DaemonSet"]);
    expect(manifestOf("Namespace").metadata.name).toBe("strata-system");
    for (const manifest of manifests.filter((m) => m.kind !== "Namespace"))
      expect(manifest.metadata.namespace, manifest.kind).toBe("strata-system");
    expect(manifestOf("ServiceAccount").metadata.name).toBe("strata-agent");
    expect(manifestOf("DaemonSet").spec!.template.spec.serviceAccountName).toBe("strata-agent");
  });

  it("give the agent exactly the variables it reads, and those its arguments use", () => {
    const container = agentContainer();
    const fromArgs = argumentVariables(container);
    const given = container.env.map((variable) => variable.name);
    expect(new Set(given).size).toBe(given.length);
    expect(new Set(given)).toEqual(new Set([...DEPLOYED_AGENT_VARIABLES, ...fromArgs]));
    // NODE_IP is the node's address (downward API); the rest are the cluster's settings and secret.
    expect(fromArgs.sort()).toEqual(["NODE_IP", "STRATA_STATE_TABLE"]);
  });

  it("take every setting from the ConfigMap, which holds nothing unused, and the secret from its Secret", () => {
    const container = agentContainer();
    const config = manifestOf("ConfigMap");
    const fromConfig = container.env.filter((v) => v.valueFrom?.configMapKeyRef);
    for (const variable of fromConfig) {
      expect(variable.valueFrom!.configMapKeyRef).toEqual({ name: config.metadata.name, key: variable.name });
      expect(config.data![variable.name], variable.name).toBeTruthy();
    }
    expect(Object.keys(config.data!).sort()).toEqual(fromConfig.map((v) => v.name).sort());
    const secrets = container.env.filter((v) => v.valueFrom?.secretKeyRef);
    expect(secrets).toEqual([
      {
        name: CLUSTER_SECRET_VARIABLE,
        valueFrom: { secretKeyRef: { name: "strata-cluster-secret", key: CLUSTER_SECRET_VARIABLE } },
      },
    ]);
    expect(container.env.find((v) => v.name === "NODE_IP")?.valueFrom?.fieldRef?.fieldPath).toBe(
      "status.hostIP",
    );
  });

  it("listen on the agent's default ports, NBD on loopback only, and probe and scrape the API port", () => {
    const container = agentContainer();
    const template = manifestOf("DaemonSet").spec!.template;
    expect(argument(container, "--api-listen")).toBe(`$(NODE_IP):${portOf(DEFAULT_LISTEN.api)}`);
    expect(argument(container, "--replication-listen")).toBe(
      `$(NODE_IP):${portOf(DEFAULT_LISTEN.replication)}`,
    );
    expect(argument(container, "--nbd-listen")).toBe(DEFAULT_LISTEN.nbd);
    const ports = Object.fromEntries(container.ports.map((p) => [p.name, p.containerPort]));
    expect(ports).toEqual({
      api: portOf(DEFAULT_LISTEN.api),
      replication: portOf(DEFAULT_LISTEN.replication),
    });
    for (const probe of [container.startupProbe, container.readinessProbe, container.livenessProbe])
      expect(probe.httpGet.port).toBe("api");
    expect(template.metadata.annotations["prometheus.io/scrape"]).toBe("true");
    expect(Number(template.metadata.annotations["prometheus.io/port"])).toBe(ports.api);
  });

  it("run one agent per node, privileged on the host's network, with the host's /dev and drives", () => {
    const daemonSet = manifestOf("DaemonSet").spec!;
    const pod = daemonSet.template.spec;
    const container = agentContainer();
    expect(daemonSet.updateStrategy).toEqual({
      type: "RollingUpdate",
      rollingUpdate: { maxUnavailable: 1, maxSurge: 0 },
    });
    expect(pod.priorityClassName).toBe("system-node-critical");
    expect(pod.hostNetwork).toBe(true);
    expect(container.securityContext.privileged).toBe(true);
    expect(container.args).toContain("--ec2-drives");
    const hostPaths = Object.fromEntries(pod.volumes.map((v) => [v.name, v.hostPath.path]));
    const mounts = Object.fromEntries(container.volumeMounts.map((m) => [m.mountPath, m]));
    expect(hostPaths[mounts["/dev"]!.name]).toBe("/dev");
    const dataDir = argument(container, "--data-dir");
    expect(hostPaths[mounts[dataDir]!.name]).toBe(dataDir);
    expect(mounts[dataDir]!.mountPropagation).toBe("Bidirectional");
    expect(argument(container, "--nbd-socket").startsWith(`${dataDir}/`)).toBe(true);
  });

  it("the Dockerfile runs the image bundle with the agent's V8 flags", () => {
    const dockerfile = readFileSync(join(MANIFEST_DIR, "..", "..", "Dockerfile"), "utf8");
    expect(dockerfile).toMatch(/^FROM node:24-bookworm-slim AS build$/m);
    expect(dockerfile).toMatch(/^COPY --from=build \/src\/dist\/image\/ \/app\/$/m);
    const entrypoint = /^ENTRYPOINT (.+)$/m.exec(dockerfile)?.[1];
    const command = JSON.parse(entrypoint ?? "[]") as string[];
    expect(command[0]).toBe("node");
    expect(command.slice(1, -1)).toEqual(expect.arrayContaining([...AGENT_NODE_FLAGS]));
    expect(command.at(-1)).toBe("/app/agent.mjs");
    expect(dockerfile).toMatch(/apt-get install -y --no-install-recommends e2fsprogs util-linux/);
  });
});
