import type { AwsHttpReply, AwsHttpRequest, AwsProtocolHandler } from "./http.js";
import { AwsServiceError } from "./service-error.js";
import { type XmlListItem, type XmlObject, xmlDocument } from "./xml.js";

/**
 * The query protocols: a form-encoded POST naming an `Action` and the API `Version`, answered with
 * an XML document `<ActionResponse xmlns=...>`. EC2 and Auto Scaling speak two dialects of it,
 * which differ in where the result and the request id go, what a list entry is called, and how an
 * error is wrapped; the dialect says which, the rest is shared.
 */
export interface QueryDialect {
  namespace: string;
  listItem: XmlListItem;
  /** The whole success document for one action's result members. */
  success(action: string, result: XmlObject, requestId: string): XmlObject;
  /** The error document: its root element name and content. */
  error(error: AwsServiceError, requestId: string): { root: string; content: XmlObject };
  /** How this service refuses a request that leaves out a required parameter. */
  missingParameter(name: string): AwsServiceError;
}

export type QueryAction = (params: QueryParams) => XmlObject | Promise<XmlObject>;

/** EC2's dialect: members straight under the response, `requestId` first, lists of `item`. */
export const ec2Dialect = (namespace: string): QueryDialect => ({
  namespace,
  listItem: "item",
  success: (_action, result, requestId) => ({ requestId, ...result }),
  error: (error, requestId) => ({
    root: "Response",
    content: { Errors: { Error: { Code: error.code, Message: error.message } }, RequestID: requestId },
  }),
  missingParameter: (name) =>
    new AwsServiceError("MissingParameter", `The request must contain the parameter ${name}`),
});

/** The AWS query protocol (Auto Scaling, IAM, STS ...): an `<Action>Result` and `ResponseMetadata`. */
export const awsQueryDialect = (namespace: string): QueryDialect => ({
  namespace,
  listItem: "member",
  success: (action, result, requestId) => ({
    [`${action}Result`]: result,
    ResponseMetadata: { RequestId: requestId },
  }),
  error: (error, requestId) => ({
    root: "ErrorResponse",
    content: {
      Error: {
        Type: error.httpStatus >= 500 ? "Receiver" : "Sender",
        Code: error.code,
        Message: error.message,
      },
      RequestId: requestId,
    },
  }),
  missingParameter: (name) =>
    new AwsServiceError(
      "ValidationError",
      `1 validation error detected: Value null at '${name}' failed to satisfy constraint: Member must not be null`,
    ),
});

export function queryProtocol(
  dialect: QueryDialect,
  actions: Record<string, QueryAction>,
): AwsProtocolHandler {
  const document = (root: string, content: XmlObject) =>
    xmlDocument(root, dialect.namespace, content, dialect.listItem);
  return {
    async answer(request: AwsHttpRequest): Promise<AwsHttpReply> {
      const form =
        request.method === "GET" ? request.query : new URLSearchParams(request.body.toString("utf8"));
      const params = new QueryParams(form, dialect);
      const action = params.required("Action");
      const run = Object.hasOwn(actions, action) ? actions[action] : undefined;
      if (!run)
        throw new AwsServiceError("InvalidAction", `The action ${action} is not valid for this web service.`);
      const result = await run(params);
      return {
        status: 200,
        headers: { "content-type": "text/xml;charset=UTF-8", "x-amzn-requestid": request.requestId },
        body: document(`${action}Response`, dialect.success(action, result, request.requestId)),
      };
    },
    refusal(error: AwsServiceError, requestId: string): AwsHttpReply {
      const { root, content } = dialect.error(error, requestId);
      return {
        status: error.httpStatus,
        headers: { "content-type": "text/xml;charset=UTF-8", "x-amzn-requestid": requestId },
        body: document(root, content),
      };
    },
  };
}

/** A name/value filter as the query protocols send it: `Filter.N.Name`, `Filter.N.Value.M`. */
export interface QueryFilter {
  name: string;
  values: string[];
}

/**
 * The parameters of one request. Lists arrive flattened with 1-based indexes (`InstanceId.1`,
 * `InstanceId.2` ...), in any order; they are read back in index order.
 */
export class QueryParams {
  constructor(
    private readonly form: URLSearchParams,
    private readonly dialect: QueryDialect,
  ) {}

  string(name: string): string | undefined {
    return this.form.get(name) ?? undefined;
  }

  required(name: string): string {
    const value = this.string(name);
    if (value === undefined || value === "") throw this.dialect.missingParameter(name);
    return value;
  }

  boolean(name: string): boolean {
    return this.string(name)?.toLowerCase() === "true";
  }

  integer(name: string): number | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    const number = Number(value);
    if (!Number.isInteger(number))
      throw new AwsServiceError(
        "InvalidParameterValue",
        `Value (${value}) for parameter ${name} is invalid.`,
      );
    return number;
  }

  /** `<prefix>.1`, `<prefix>.2` ... */
  list(prefix: string): string[] {
    return this.indexes(prefix).map((index) => this.form.get(`${prefix}.${index}`)!);
  }

  filters(): QueryFilter[] {
    return this.indexes("Filter", ".Name").map((index) => ({
      name: this.form.get(`Filter.${index}.Name`)!,
      values: this.list(`Filter.${index}.Value`),
    }));
  }

  /** A tag set, `<prefix>.N.Key` with `<prefix>.N.Value` (a missing value is empty, as EC2 takes it). */
  tags(prefix: string): Record<string, string> {
    return Object.fromEntries(
      this.indexes(prefix, ".Key").map((index) => [
        this.form.get(`${prefix}.${index}.Key`)!,
        this.form.get(`${prefix}.${index}.Value`) ?? "",
      ]),
    );
  }

  private indexes(prefix: string, suffix = ""): number[] {
    const pattern = new RegExp(`^${prefix.replaceAll(".", "\\.")}\\.(\\d+)${suffix.replaceAll(".", "\\.")}$`);
    const found: number[] = [];
    for (const key of this.form.keys()) {
      const match = pattern.exec(key);
      if (match) found.push(Number(match[1]));
    }
    return found.sort((a, b) => a - b);
  }
}
