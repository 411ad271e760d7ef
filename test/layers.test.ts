/**
 * The layer rules of DESIGN.md (Layers), checked on the import graph of the sources: core/ is what
 * the Lambdas of functions/ will share, so it must stand alone, and no cycle may tie modules
 * together (a cycle makes load order matter and the parts impossible to read one at a time).
 */
import { type Dirent, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SOURCE_FOLDERS = ["agent", "core", "cli", "infra", "functions", "bench"];
/** `import … from "x"`, `export … from "x"`, and side-effect `import "x"`, over several lines too. */
const IMPORT = /^\s*(?:import|export)\s+(?:[^'";]*?\sfrom\s+)?["']([^"']+)["']/gm;

/** Project-relative path (with "/") → the project files it imports. */
type ImportGraph = Map<string, string[]>;

function sourceFiles(folder: string): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(join(ROOT, folder), { withFileTypes: true });
  } catch {
    return []; // functions/ does not exist before its first Lambda.
  }
  return entries.flatMap((entry) => {
    const path = `${folder}/${entry.name}`;
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

function importGraph(): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const file of SOURCE_FOLDERS.flatMap(sourceFiles)) {
    const text = readFileSync(join(ROOT, file), "utf8");
    const targets = [...text.matchAll(IMPORT)]
      .map((match) => match[1]!)
      .filter((specifier) => specifier.startsWith("."))
      .map((specifier) =>
        relative(ROOT, resolve(ROOT, dirname(file), specifier))
          .split(sep)
          .join("/")
          .replace(/\.js$/, ".ts"),
      );
    graph.set(file, targets);
  }
  return graph;
}

const folderOf = (file: string) => file.split("/")[0]!;

/** Every import of a file in `from` that lands outside the folders it may use, as "a → b". */
function forbiddenImports(graph: ImportGraph, from: string, allowed: readonly string[]): string[] {
  return [...graph]
    .filter(([file]) => folderOf(file) === from)
    .flatMap(([file, targets]) =>
      targets.filter((target) => !allowed.includes(folderOf(target))).map((target) => `${file} → ${target}`),
    );
}

/** The first import cycle found, as the path around it (first file repeated at the end). */
function findCycle(graph: ImportGraph): string[] | undefined {
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  const visit = (file: string): string[] | undefined => {
    if (onPath.has(file)) return [...path.slice(path.indexOf(file)), file];
    if (done.has(file)) return undefined;
    path.push(file);
    onPath.add(file);
    for (const target of graph.get(file) ?? []) {
      const cycle = visit(target);
      if (cycle) return cycle;
    }
    path.pop();
    onPath.delete(file);
    done.add(file);
    return undefined;
  };
  for (const file of [...graph.keys()].sort()) {
    const cycle = visit(file);
    if (cycle) return cycle;
  }
  return undefined;
}

describe("layers (DESIGN.md)", () => {
  const graph = importGraph();

  it("finds the sources and their imports", () => {
    expect(graph.get("agent/main.ts")?.length).toBeGreaterThan(0);
    expect(graph.has("core/errors.ts")).toBe(true);
  });

  it("core/ imports no other project folder", () => {
    expect(forbiddenImports(graph, "core", ["core"])).toEqual([]);
  });

  it("functions/ imports only core/", () => {
    expect(forbiddenImports(graph, "functions", ["functions", "core"])).toEqual([]);
  });

  it("agent/ imports only agent/ and core/", () => {
    expect(forbiddenImports(graph, "agent", ["agent", "core"])).toEqual([]);
  });

  it("cli/ imports only cli/, core/ and infra/", () => {
    expect(forbiddenImports(graph, "cli", ["cli", "core", "infra"])).toEqual([]);
  });

  it("nothing outside cli/ imports cli/", () => {
    const intoCli = [...graph]
      .filter(([file]) => folderOf(file) !== "cli")
      .flatMap(([file, targets]) =>
        targets.filter((target) => folderOf(target) === "cli").map((target) => `${file} → ${target}`),
      );
    expect(intoCli).toEqual([]);
  });

  it("has no import cycles", () => {
    expect(findCycle(graph)?.join(" → ")).toBeUndefined();
  });
});
