import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

export const MANIFEST_DIR = join(import.meta.dirname, "..", "..", "deploy", "kubernetes");

/** The fields of the Kubernetes objects these tests read; the rest is left unchecked by type. */
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    configMapKeyRef?: { name: string; key: string };
    secretKeyRef?: { name: string; key: string };
  };
}

export interface Probe {
  httpGet: { path: string; port: string | number };
}

export interface Container {
  name: string;
  image: string;
  args: string[];
  env: EnvVar[];
  ports: { name: string; containerPort: number }[];
  securityContext: { privileged?: boolean };
  startupProbe: Probe;
  readinessProbe: Probe;
  livenessProbe: Probe;
  volumeMounts: { name: string; mountPath: string; mountPropagation?: string }[];
}

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  data?: Record<string, string>;
  spec?: {
    updateStrategy: { type: string; rollingUpdate: { maxUnavailable: number; maxSurge: number } };
    template: {
      metadata: { annotations: Record<string, string> };
      spec: {
        serviceAccountName: string;
        priorityClassName: string;
        hostNetwork: boolean;
        containers: Container[];
        volumes: { name: string; hostPath: { path: string } }[];
      };
    };
  };
}

/** Every object of every manifest, in the order `kubectl apply -f deploy/kubernetes` applies them. */
export function loadManifests(): Manifest[] {
  return readdirSync(MANIFEST_DIR)
    .filter((file) => file.endsWith(".yaml"))
    .sort()
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(MANIFEST_DIR, file), "utf8")).map((document) => {
        if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]!.message}`);
        return document.toJS() as Manifest;
      }),
    );
}

export function manifestOf(kind: string): Manifest {
  const found = loadManifests().filter((manifest) => manifest.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind} in ${MANIFEST_DIR}, found ${found.length}`);
  return found[0]!;
}

/** The agent's container in the DaemonSet. */
export function agentContainer(): Container {
  const container = manifestOf("DaemonSet").spec!.template.spec.containers.find((c) => c.name === "agent");
  if (container === undefined) throw new Error("the DaemonSet has no container named agent");
  return container;
}

/** The value that follows `flag` in the container's arguments. */
export function argument(container: Container, flag: string): string {
  const index = container.args.indexOf(flag);
  if (index < 0 || index + 1 >= container.args.length)
    throw new Error(`the agent's args have no ${flag} VALUE`);
  return container.args[index + 1]!;
}

/** The variables the arguments refer to as $(NAME), which Kubernetes fills in from the env. */
export function argumentVariables(container: Container): string[] {
  return [
    ...new Set(container.args.flatMap((arg) => [...arg.matchAll(/\$\(([A-Z0-9_]+)\)/g)].map((m) => m[1]!))),
  ];
}
