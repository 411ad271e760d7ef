import { AwsServiceError } from "../aws/service-error.js";

/** Where the local Step Functions lives: the ARNs it hands out carry the local cloud's identity. */
export interface StatesLocation {
  region: string;
  account: string;
}

export const stateMachineArn = ({ region, account }: StatesLocation, machine: string) =>
  `arn:aws:states:${region}:${account}:stateMachine:${machine}`;

export const executionArn = ({ region, account }: StatesLocation, machine: string, execution: string) =>
  `arn:aws:states:${region}:${account}:execution:${machine}:${execution}`;

const ARN = /^arn:aws[a-z-]*:states:[^:]*:[^:]*:(stateMachine|execution):(.+)$/;

/** Refuses what is not an ARN of `kind` at all, as AWS refuses it: InvalidArn. */
export function checkArn(arn: string | undefined, kind: "stateMachine" | "execution"): string {
  const match = arn === undefined ? null : ARN.exec(arn);
  const parts = match?.[2]?.split(":") ?? [];
  if (!match || match[1] !== kind || parts.length !== (kind === "execution" ? 2 : 1))
    throw new AwsServiceError("InvalidArn", `Invalid Arn: '${arn ?? ""}'`);
  return arn!;
}

/**
 * Step Functions' rule for state machine and execution names: 1 to 80 characters, none of them
 * whitespace, brackets, wildcards, the punctuation it reserves, or control characters.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses.
const FORBIDDEN = /[\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]/u;

export function checkName(name: string): string {
  if (name.length === 0 || name.length > 80 || FORBIDDEN.test(name))
    throw new AwsServiceError("InvalidName", `Invalid Name: '${name}'`);
  return name;
}

/**
 * Page tokens are opaque to callers: a cursor and what the first page was asked for, so a token is
 * refused (InvalidToken) on a different listing rather than silently paging through it.
 */
export function encodeToken(scope: string, cursor: number): string {
  return Buffer.from(JSON.stringify({ scope, cursor })).toString("base64url");
}

export function decodeToken(token: string | undefined, scope: string): number | undefined {
  if (token === undefined || token === "") return undefined;
  try {
    const decoded: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (
      decoded !== null &&
      typeof decoded === "object" &&
      "scope" in decoded &&
      "cursor" in decoded &&
      decoded.scope === scope &&
      typeof decoded.cursor === "number"
    ) {
      return decoded.cursor;
    }
  } catch {
    // Refused below, as any other token that is not one of ours.
  }
  throw new AwsServiceError("InvalidToken", `Invalid Token: '${token}'`);
}

/** The page size a List/Get call asked for: 0 or none means the default 100, at most 1000. */
export function pageSize(maxResults: number | undefined): number {
  if (maxResults === undefined || maxResults === 0) return 100;
  if (!Number.isInteger(maxResults) || maxResults < 0 || maxResults > 1000)
    throw new AwsServiceError(
      "ValidationException",
      `1 validation error detected: Value '${maxResults}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 1000`,
    );
  return maxResults;
}
