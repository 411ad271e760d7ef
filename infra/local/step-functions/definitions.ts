import { readFile } from "node:fs/promises";
import type { StateMachineDefinition } from "aws-local-stepfunctions";

/**
 * The workflows' Amazon States Language files as the local cloud runs them: the very files the stack
 * deploys, with the stack's definition substitutions applied the way CloudFormation applies them, so
 * a definition that runs here is the definition that runs in AWS.
 */
export type { StateMachineDefinition };

/** `${Name}`: CloudFormation's DefinitionSubstitutions placeholder. */
const PLACEHOLDER = /\$\{([^}]*)\}/g;

/** Keys whose value is a nested state machine (Map's ItemProcessor and legacy Iterator). */
const NESTED_MACHINE_KEYS = ["ItemProcessor", "Iterator"] as const;
const STATE_TYPES = new Set(["Task", "Parallel", "Map", "Pass", "Wait", "Choice", "Succeed", "Fail"]);

/** Reads an ASL file, applies `substitutions`, and checks its structure. Errors name the file. */
export async function loadDefinition(
  file: string,
  substitutions: Readonly<Record<string, string>> = {},
): Promise<StateMachineDefinition> {
  const text = await readFile(file, "utf8");
  try {
    return parseDefinition(text, substitutions);
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  }
}

/** Parses ASL text, applies `substitutions` to its string values, and checks its structure. */
export function parseDefinition(
  text: string,
  substitutions: Readonly<Record<string, string>> = {},
): StateMachineDefinition {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON: ${(error as Error).message}`);
  }
  const definition = substitute(parsed, substitutions);
  validateDefinition(definition);
  return definition;
}

/**
 * Replaces every `${Name}` in the string values of `value` by `substitutions[Name]`, as
 * CloudFormation does with a state machine's DefinitionSubstitutions. Keys are left alone. A
 * placeholder without a substitution is an error: left in place it would only surface as a bad ARN
 * at the first execution that reaches its state.
 */
export function substitute<T>(value: T, substitutions: Readonly<Record<string, string>>): T {
  const walk = (node: unknown): unknown => {
    if (typeof node === "string") {
      return node.replace(PLACEHOLDER, (_, name: string) => {
        if (!Object.hasOwn(substitutions, name)) throw new Error(`no substitution for \${${name}}`);
        return substitutions[name]!;
      });
    }
    if (Array.isArray(node)) return node.map(walk);
    if (node !== null && typeof node === "object") {
      return Object.fromEntries(Object.entries(node).map(([key, inner]) => [key, walk(inner)]));
    }
    return node;
  };
  return walk(value) as T;
}

/**
 * The structure the runner relies on, checked up front so a broken workflow is refused when the
 * local cloud starts rather than halfway through a recovery: StartAt and every transition (Next,
 * Default, Choices, Catch) name a state of their own scope, every state has a known Type and either
 * a way on or an end, and state names are unique across the whole machine, nested ones included, as
 * AWS requires (the runner wires Lambda handlers and Wait overrides by state name).
 */
export function validateDefinition(definition: unknown): asserts definition is StateMachineDefinition {
  const seen = new Set<string>();
  validateScope(definition, "the state machine", seen);
  if (isObject(definition)) checkQueryLanguage(definition, "the state machine");
}

function validateScope(scope: unknown, where: string, seen: Set<string>): void {
  if (!isObject(scope)) throw new Error(`${where} is not an object`);
  const states = scope["States"];
  if (!isObject(states) || Object.keys(states).length === 0) throw new Error(`${where} has no States`);
  const startAt = scope["StartAt"];
  if (typeof startAt !== "string") throw new Error(`${where} has no StartAt`);
  if (!Object.hasOwn(states, startAt)) throw new Error(`${where}: StartAt "${startAt}" names no state`);

  const transition = (state: string, field: string, target: unknown) => {
    if (typeof target !== "string" || !Object.hasOwn(states, target))
      throw new Error(`state "${state}": ${field} ${JSON.stringify(target)} names no state in ${where}`);
  };
  for (const [name, state] of Object.entries(states)) {
    if (seen.has(name)) throw new Error(`state "${name}" is defined twice (names must be unique)`);
    seen.add(name);
    if (!isObject(state)) throw new Error(`state "${name}" is not an object`);
    checkQueryLanguage(state, `state "${name}"`);
    const type = state["Type"];
    if (typeof type !== "string" || !STATE_TYPES.has(type))
      throw new Error(`state "${name}": unknown Type ${JSON.stringify(type)}`);
    if (type === "Choice") {
      const choices = state["Choices"];
      if (!Array.isArray(choices) || choices.length === 0) throw new Error(`state "${name}": no Choices`);
      choices.forEach((choice, i) => {
        transition(name, `Choices[${i}].Next`, isObject(choice) ? choice["Next"] : undefined);
      });
      if (state["Default"] !== undefined) transition(name, "Default", state["Default"]);
    } else if (type !== "Succeed" && type !== "Fail") {
      if (state["End"] === true) {
        if (state["Next"] !== undefined) throw new Error(`state "${name}": both Next and End`);
      } else {
        transition(name, "Next", state["Next"]);
      }
    }
    const catchers = state["Catch"];
    if (Array.isArray(catchers)) {
      catchers.forEach((catcher, i) => {
        transition(name, `Catch[${i}].Next`, isObject(catcher) ? catcher["Next"] : undefined);
      });
    }
    if (type === "Map") {
      const nested = NESTED_MACHINE_KEYS.map((key) => state[key]).find((inner) => inner !== undefined);
      validateScope(nested, `the ItemProcessor of "${name}"`, seen);
    }
    if (type === "Parallel") {
      const branches = state["Branches"];
      if (!Array.isArray(branches) || branches.length === 0) throw new Error(`state "${name}": no Branches`);
      branches.forEach((branch, i) => {
        validateScope(branch, `branch ${i} of "${name}"`, seen);
      });
    }
  }
}

/** The local engine evaluates JSONPath only; a JSONata workflow is refused rather than misread. */
function checkQueryLanguage(node: Record<string, unknown>, where: string): void {
  const language = node["QueryLanguage"];
  if (language !== undefined && language !== "JSONPath")
    throw new Error(`${where}: QueryLanguage ${JSON.stringify(language)} (only JSONPath runs locally)`);
}

/** A state with its name, wherever it sits: the top level, a Map's ItemProcessor, a Parallel branch. */
export interface NamedState {
  name: string;
  state: StateMachineDefinition["States"][string];
}

/** Every state of `definition`, nested ones included, in definition order. */
export function allStates(definition: Pick<StateMachineDefinition, "States">): NamedState[] {
  return Object.entries(definition.States).flatMap(([name, state]) => {
    const own: NamedState = { name, state };
    if (state.Type === "Map") {
      const nested = state.ItemProcessor ?? state.Iterator;
      return [own, ...(nested ? allStates(nested) : [])];
    }
    if (state.Type === "Parallel") return [own, ...state.Branches.flatMap(allStates)];
    return [own];
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
