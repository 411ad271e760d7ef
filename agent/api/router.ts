import { ApiFault, badRequest } from "./faults.js";

export type Method = "GET" | "POST" | "PATCH" | "DELETE";

/** What a handler answers: a status and, unless it is 204, a JSON body. */
export interface Reply {
  status: number;
  body?: unknown;
  /** Overrides the JSON encoding (e.g. Prometheus text). */
  raw?: { contentType: string; text: string };
}

export interface RouteContext<P extends string = string> {
  params: Record<P, string>;
  /** The query string's parameters. */
  query: URLSearchParams;
  /** The decoded JSON body (`{}` when empty); only read when the handler asks for it. */
  body(): Promise<unknown>;
}

export interface Route {
  method: Method;
  /** Segments starting with ':' capture one path segment, e.g. /v1/volumes/:name. */
  pattern: string;
  /** Debug-level access logs for probes and scrapes, which would otherwise drown the log. */
  quiet?: boolean;
  handle(context: RouteContext): Promise<Reply>;
}

export interface Match {
  route: Route;
  params: Record<string, string>;
}

/**
 * Finds the route for a method and path. A path that exists under other methods is a 405 with an
 * Allow header; a path that exists nowhere is a 404.
 */
export function matchRoute(routes: readonly Route[], method: string, pathname: string): Match {
  const segments = splitPath(pathname);
  const allowed: string[] = [];
  for (const route of routes) {
    const params = matchPattern(route.pattern, segments);
    if (!params) continue;
    if (route.method === method) return { route, params };
    allowed.push(route.method);
  }
  if (allowed.length > 0) {
    throw new ApiFault("METHOD_NOT_ALLOWED", `${method} is not allowed on ${pathname}`, {
      allow: allowed.join(", "),
    });
  }
  throw new ApiFault("NOT_FOUND", `no such API route: ${method} ${pathname}`);
}

function splitPath(pathname: string): string[] {
  const segments = pathname.split("/").filter((segment) => segment !== "");
  try {
    return segments.map((segment) => decodeURIComponent(segment));
  } catch {
    throw badRequest(`malformed percent-encoding in path ${pathname}`);
  }
}

function matchPattern(pattern: string, segments: readonly string[]): Record<string, string> | undefined {
  const parts = splitPath(pattern);
  if (parts.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (const [index, part] of parts.entries()) {
    const segment = segments[index]!;
    if (part.startsWith(":")) params[part.slice(1)] = segment;
    else if (part !== segment) return undefined;
  }
  return params;
}
