import { BlockList, isIP } from "node:net";
import type { EventPattern } from "../../event-rules.js";

export type { EventPattern } from "../../event-rules.js";

/**
 * EventBridge's event pattern matching, for the local cloud's bus. The same pattern definitions
 * (infra/event-rules.ts) are deployed to AWS, so this follows the rules of the EventBridge user
 * guide ("Creating event patterns", "Content filtering", "Comparison operators", "Matching null
 * values and empty strings"), cited where each is applied:
 *
 * - an event matches when every field of the pattern matches (AND); a leaf array lists
 *   alternatives (OR); `$or` lists sub-patterns of which one must match;
 * - a leaf value of the event that is an array matches when any of its elements does;
 * - an object pattern against an array of objects must match within one element ("array-consistent"
 *   matching), never by combining fields of different elements;
 * - comparison operators apply to leaf values only: an object in the event is not a value, so
 *   `exists: true` does not match it and `exists: false` does.
 *
 * `pattern` is one validateEventPattern accepted: the bus validates a rule once, when it is put,
 * as EventBridge does, not on every event.
 */
export function matchesEventPattern(pattern: EventPattern, event: unknown): boolean {
  return matchesObjectPattern(pattern, event);
}

type JsonObject = { readonly [key: string]: unknown };

const isObject = (value: unknown): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const fieldOf = (node: JsonObject | undefined, field: string): unknown =>
  node !== undefined && Object.hasOwn(node, field) ? node[field] : undefined;

/**
 * A nested pattern against the event's value at its place. An array of objects matches when one of
 * its elements matches the whole sub-pattern; anything that is not an object has no fields, so only
 * `exists: false` can match under it.
 */
function matchesObjectPattern(pattern: EventPattern, node: unknown): boolean {
  if (Array.isArray(node)) {
    const objects = node.flat(Number.POSITIVE_INFINITY).filter(isObject);
    if (objects.length > 0) return objects.some((element) => matchesFields(pattern, element));
  }
  return matchesFields(pattern, isObject(node) ? node : undefined);
}

function matchesFields(pattern: EventPattern, node: JsonObject | undefined): boolean {
  return Object.entries(pattern).every(([field, expected]) => {
    if (field === "$or" && Array.isArray(expected)) {
      return (expected as readonly EventPattern[]).some((alternative) => matchesFields(alternative, node));
    }
    if (Array.isArray(expected)) return matchesLeaf(expected, leafValues(fieldOf(node, field)));
    return matchesObjectPattern(expected as EventPattern, fieldOf(node, field));
  });
}

type Leaf = string | number | boolean | null;

/**
 * The leaf values of an event field: the value itself, or the scalars of an array (at any depth,
 * as EventBridge flattens arrays). Objects are not leaf values; an absent field has none.
 */
function leafValues(value: unknown): Leaf[] {
  if (value === undefined || isObject(value)) return [];
  if (Array.isArray(value)) return value.flatMap(leafValues);
  return [value as Leaf];
}

/** A leaf array is a list of alternatives: one of them matching is enough. */
function matchesLeaf(alternatives: readonly unknown[], values: readonly Leaf[]): boolean {
  return alternatives.some((alternative) => {
    if (isObject(alternative) && "exists" in alternative) {
      // "Exists matching works on the presence or absence of a field": presence of a leaf value,
      // whatever it is (null included).
      return alternative["exists"] === values.length > 0;
    }
    return values.some((value) => matchesValue(alternative, value));
  });
}

/** One alternative of a leaf array against one leaf value of the event. */
function matchesValue(alternative: unknown, value: Leaf): boolean {
  if (!isObject(alternative)) return matchesExactly(alternative, value);
  const [operator, argument] = Object.entries(alternative)[0]!;
  switch (operator) {
    case "prefix":
      return typeof value === "string" && matchesPrefix(argument, value);
    case "suffix":
      return typeof value === "string" && matchesSuffix(argument, value);
    case "equals-ignore-case":
      return typeof value === "string" && equalsIgnoringCase(argument as string, value);
    case "wildcard":
      return typeof value === "string" && matchesWildcard(argument as string, value);
    case "anything-but":
      return matchesAnythingBut(argument, value);
    case "numeric":
      return typeof value === "number" && inNumericRange(argument as readonly (string | number)[], value);
    case "cidr":
      return typeof value === "string" && inCidr(argument as string, value);
    default:
      return false;
  }
}

/**
 * Exact matching compares type and value: the string "5" is not the number 5, and null is neither
 * "" nor absent ("Null values and empty strings are not interchangeable"). Numbers compare by
 * value, so 5.0 in an event equals 5 in a pattern.
 */
function matchesExactly(expected: unknown, value: Leaf): boolean {
  return expected === value;
}

const lower = (text: string) => text.toLowerCase();

function equalsIgnoringCase(expected: string, value: string): boolean {
  return lower(expected) === lower(value);
}

/** `{"prefix": "us-"}` or `{"prefix": {"equals-ignore-case": "EventB"}}`, on strings only. */
function matchesPrefix(argument: unknown, value: string): boolean {
  if (typeof argument === "string") return value.startsWith(argument);
  return lower(value).startsWith(lower(ignoreCaseArgument(argument)));
}

/** `{"suffix": ".png"}` or `{"suffix": {"equals-ignore-case": ".PNG"}}`, on strings only. */
function matchesSuffix(argument: unknown, value: string): boolean {
  if (typeof argument === "string") return value.endsWith(argument);
  return lower(value).endsWith(lower(ignoreCaseArgument(argument)));
}

const ignoreCaseArgument = (argument: unknown) =>
  (argument as { "equals-ignore-case": string })["equals-ignore-case"];

/**
 * `anything-but` matches any present value except the ones it names: a value or a list of values,
 * or the strings a `prefix`, `suffix`, `equals-ignore-case` or `wildcard` would match. An absent
 * field has no value, so it does not match.
 */
function matchesAnythingBut(argument: unknown, value: Leaf): boolean {
  if (!isObject(argument)) {
    const excluded = Array.isArray(argument) ? argument : [argument];
    return !excluded.some((candidate) => matchesExactly(candidate, value));
  }
  if (typeof value !== "string") return true;
  const [operator, excluded] = Object.entries(argument)[0]!;
  const list = (Array.isArray(excluded) ? excluded : [excluded]) as string[];
  switch (operator) {
    case "prefix":
      return !list.some((prefix) => value.startsWith(prefix));
    case "suffix":
      return !list.some((suffix) => value.endsWith(suffix));
    case "equals-ignore-case":
      return !list.some((candidate) => equalsIgnoringCase(candidate, value));
    case "wildcard":
      return !list.some((candidate) => matchesWildcard(candidate, value));
    default:
      return false;
  }
}

/**
 * `*` matches any run of characters (none included); `\*` is a literal asterisk and `\\` a literal
 * backslash. Compiled once per wildcard string.
 */
function matchesWildcard(wildcard: string, value: string): boolean {
  let expression = wildcardExpressions.get(wildcard);
  if (expression === undefined) {
    let source = "";
    for (let i = 0; i < wildcard.length; i++) {
      const char = wildcard[i]!;
      if (char === "*") source += ".*";
      else if (char === "\\") source += escapeRegExp(wildcard[++i] ?? "");
      else source += escapeRegExp(char);
    }
    expression = new RegExp(`^${source}$`, "su");
    wildcardExpressions.set(wildcard, expression);
  }
  return expression.test(value);
}

const wildcardExpressions = new Map<string, RegExp>();

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * `["=", 5]`, `["<", 10]`, `[">", 0, "<=", 5]`: every comparison must hold. Numeric matching only
 * applies to JSON numbers, never to strings that look like one.
 */
function inNumericRange(range: readonly (string | number)[], value: number): boolean {
  for (let i = 0; i < range.length; i += 2) {
    if (!compares(range[i] as string, value, range[i + 1] as number)) return false;
  }
  return true;
}

function compares(operator: string, value: number, bound: number): boolean {
  switch (operator) {
    case "=":
      return value === bound;
    case "<":
      return value < bound;
    case "<=":
      return value <= bound;
    case ">":
      return value > bound;
    case ">=":
      return value >= bound;
    default:
      return false;
  }
}

/** `{"cidr": "10.0.0.0/24"}`: an IPv4 or IPv6 address string inside the block. */
function inCidr(cidr: string, value: string): boolean {
  const family = isIP(value);
  if (family === 0) return false;
  const [network, prefix] = cidr.split("/") as [string, string];
  const networkFamily = isIP(network);
  if (networkFamily !== family) return false;
  const block = new BlockList();
  block.addSubnet(network, Number(prefix), family === 4 ? "ipv4" : "ipv6");
  return block.check(value, family === 4 ? "ipv4" : "ipv6");
}

// ---------------------------------------------------------------------------------------------
// Validation: refuse what EventBridge's PutRule refuses, before a rule is used locally or deployed.
// ---------------------------------------------------------------------------------------------

/** EventBridge's documented range for numeric matching: ±5.0e9, with 15 digits of precision. */
const NUMERIC_LIMIT = 5e9;

const LEAF_OPERATORS = new Set([
  "prefix",
  "suffix",
  "equals-ignore-case",
  "wildcard",
  "anything-but",
  "numeric",
  "exists",
  "cidr",
]);

class InvalidPattern extends Error {
  constructor(path: string, reason: string) {
    super(`Invalid event pattern at ${path}: ${reason}`);
    this.name = "InvalidEventPattern";
  }
}

/**
 * `pattern` if it is a pattern EventBridge accepts; otherwise throws an Error naming the first bad
 * path (`$.detail.state[0]`) and why.
 */
export function validateEventPattern(pattern: unknown): EventPattern {
  validateObjectPattern(pattern, "$");
  return pattern as EventPattern;
}

function validateObjectPattern(pattern: unknown, path: string): void {
  if (!isObject(pattern)) throw new InvalidPattern(path, "a pattern must be a JSON object");
  const fields = Object.entries(pattern);
  if (fields.length === 0) throw new InvalidPattern(path, "a pattern object must name at least one field");
  for (const [field, value] of fields) {
    const fieldPath = `${path}.${field}`;
    if (field === "$or") validateOr(value, fieldPath);
    else if (Array.isArray(value)) validateLeaf(value, fieldPath);
    else if (isObject(value)) validateObjectPattern(value, fieldPath);
    else
      throw new InvalidPattern(
        fieldPath,
        `a field's value must be an array of values to match or a nested pattern, not ${JSON.stringify(value)}`,
      );
  }
}

/** `$or` takes at least two sub-patterns (with fewer it is no choice). */
function validateOr(value: unknown, path: string): void {
  if (!Array.isArray(value) || value.length < 2)
    throw new InvalidPattern(path, "$or must be an array of at least two patterns");
  value.forEach((alternative, index) => {
    validateObjectPattern(alternative, `${path}[${index}]`);
  });
}

function validateLeaf(alternatives: readonly unknown[], path: string): void {
  if (alternatives.length === 0) throw new InvalidPattern(path, "empty arrays are not allowed");
  alternatives.forEach((alternative, index) => {
    validateAlternative(alternative, `${path}[${index}]`);
  });
}

function validateAlternative(alternative: unknown, path: string): void {
  if (alternative === null || ["string", "number", "boolean"].includes(typeof alternative)) {
    if (typeof alternative === "number" && !Number.isFinite(alternative))
      throw new InvalidPattern(path, "numbers must be finite");
    return;
  }
  if (!isObject(alternative))
    throw new InvalidPattern(
      path,
      "a value to match must be a string, number, boolean, null or a filter object",
    );
  const entries = Object.entries(alternative);
  if (entries.length !== 1)
    throw new InvalidPattern(path, `a filter object takes exactly one operator, not ${entries.length}`);
  const [operator, argument] = entries[0]!;
  const operatorPath = `${path}.${operator}`;
  if (!LEAF_OPERATORS.has(operator))
    throw new InvalidPattern(
      operatorPath,
      `unknown filter operator "${operator}" (expected one of ${[...LEAF_OPERATORS].join(", ")})`,
    );
  switch (operator) {
    case "prefix":
    case "suffix":
      validateStringOrIgnoreCase(argument, operatorPath);
      return;
    case "equals-ignore-case":
      requireString(argument, operatorPath);
      return;
    case "wildcard":
      validateWildcard(argument, operatorPath);
      return;
    case "anything-but":
      validateAnythingBut(argument, operatorPath);
      return;
    case "numeric":
      validateNumeric(argument, operatorPath);
      return;
    case "exists":
      if (typeof argument !== "boolean") throw new InvalidPattern(operatorPath, "exists takes true or false");
      return;
    case "cidr":
      validateCidr(argument, operatorPath);
      return;
  }
}

function requireString(argument: unknown, path: string): asserts argument is string {
  if (typeof argument !== "string") throw new InvalidPattern(path, "expected a string");
}

function validateStringOrIgnoreCase(argument: unknown, path: string): void {
  if (typeof argument === "string") return;
  const entries = isObject(argument) ? Object.entries(argument) : [];
  if (entries.length !== 1 || entries[0]![0] !== "equals-ignore-case")
    throw new InvalidPattern(path, 'expected a string or {"equals-ignore-case": string}');
  requireString(entries[0]![1], `${path}.equals-ignore-case`);
}

/** "Consecutive wildcard characters are not allowed"; a backslash escapes only `*` or `\`. */
function validateWildcard(argument: unknown, path: string): void {
  requireString(argument, path);
  if (argument.includes("**"))
    throw new InvalidPattern(path, "consecutive wildcard characters are not allowed");
  for (let i = 0; i < argument.length; i++) {
    if (argument[i] !== "\\") continue;
    const escaped = argument[i + 1];
    if (escaped !== "*" && escaped !== "\\")
      throw new InvalidPattern(path, "a backslash may only escape * or \\");
    i++;
  }
}

/**
 * anything-but takes a string, a number, a non-empty list of only strings or only numbers (null and
 * booleans are refused), or one of `prefix`, `suffix`, `equals-ignore-case`, `wildcard` with a
 * string or a non-empty list of strings.
 */
function validateAnythingBut(argument: unknown, path: string): void {
  if (typeof argument === "string") return;
  if (typeof argument === "number") {
    validateNumber(argument, path);
    return;
  }
  if (Array.isArray(argument)) {
    if (argument.length === 0) throw new InvalidPattern(path, "empty arrays are not allowed");
    const allStrings = argument.every((value) => typeof value === "string");
    const allNumbers = argument.every((value) => typeof value === "number");
    if (!allStrings && !allNumbers)
      throw new InvalidPattern(path, "an anything-but list holds only strings or only numbers");
    return;
  }
  const entries = isObject(argument) ? Object.entries(argument) : [];
  if (entries.length !== 1)
    throw new InvalidPattern(
      path,
      "expected a value, a list of values, or one of prefix, suffix, equals-ignore-case, wildcard",
    );
  const [operator, excluded] = entries[0]!;
  const operatorPath = `${path}.${operator}`;
  if (!ANYTHING_BUT_OPERATORS.has(operator))
    throw new InvalidPattern(
      operatorPath,
      `anything-but does not take "${operator}" (expected prefix, suffix, equals-ignore-case or wildcard)`,
    );
  const list = Array.isArray(excluded) ? excluded : [excluded];
  if (list.length === 0) throw new InvalidPattern(operatorPath, "empty arrays are not allowed");
  list.forEach((value, index) => {
    const valuePath = Array.isArray(excluded) ? `${operatorPath}[${index}]` : operatorPath;
    if (operator === "wildcard") validateWildcard(value, valuePath);
    else requireString(value, valuePath);
  });
}

const ANYTHING_BUT_OPERATORS = new Set(["prefix", "suffix", "equals-ignore-case", "wildcard"]);

function validateNumber(value: unknown, path: string): asserts value is number {
  if (typeof value !== "number" || !Number.isFinite(value))
    throw new InvalidPattern(path, "expected a number");
  if (Math.abs(value) > NUMERIC_LIMIT)
    throw new InvalidPattern(
      path,
      `numeric matching is limited to values between -5.0e9 and 5.0e9, not ${value}`,
    );
}

const LOWER_BOUNDS = new Set([">", ">="]);
const UPPER_BOUNDS = new Set(["<", "<="]);

/**
 * `["=", n]`, or one bound (`<`, `<=`, `>`, `>=`), or a lower bound followed by an upper one that is
 * greater: `[">", 0, "<=", 5]`.
 */
function validateNumeric(argument: unknown, path: string): void {
  if (!Array.isArray(argument) || (argument.length !== 2 && argument.length !== 4))
    throw new InvalidPattern(
      path,
      'expected [operator, number] or [">" or ">=", number, "<" or "<=", number]',
    );
  for (let i = 0; i < argument.length; i += 2) {
    const operator = argument[i];
    if (operator !== "=" && !LOWER_BOUNDS.has(operator) && !UPPER_BOUNDS.has(operator))
      throw new InvalidPattern(`${path}[${i}]`, `unknown numeric operator ${JSON.stringify(operator)}`);
    validateNumber(argument[i + 1], `${path}[${i + 1}]`);
  }
  if (argument.length === 4) {
    const [lowerOperator, lowerBound, upperOperator, upperBound] = argument as [
      string,
      number,
      string,
      number,
    ];
    if (!LOWER_BOUNDS.has(lowerOperator) || !UPPER_BOUNDS.has(upperOperator))
      throw new InvalidPattern(
        path,
        'a range is a lower bound (">" or ">=") followed by an upper bound ("<" or "<=")',
      );
    if (lowerBound >= upperBound)
      throw new InvalidPattern(
        path,
        `the lower bound ${lowerBound} must be less than the upper bound ${upperBound}`,
      );
  }
}

function validateCidr(argument: unknown, path: string): void {
  requireString(argument, path);
  const [network, prefix, ...rest] = argument.split("/");
  const family = isIP(network ?? "");
  const bits = Number(prefix);
  const maxBits = family === 6 ? 128 : 32;
  if (family === 0 || rest.length > 0 || !/^\d+$/.test(prefix ?? "") || bits > maxBits)
    throw new InvalidPattern(
      path,
      `expected an IPv4 or IPv6 CIDR block such as 10.0.0.0/24, not "${argument}"`,
    );
}
