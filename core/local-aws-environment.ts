/**
 * The placeholder credentials of local mode. The local servers take them (s3rver is told to, as it
 * checks signatures); the SDK merely needs some to sign with.
 */
export const LOCAL_CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" } as const;

/**
 * The environment a process needs to reach the local cluster's DynamoDB-compatible server through
 * the standard AWS SDK variables, so the very same code reaches DynamoDB in AWS with a different
 * environment and nothing else. dynalite checks neither region nor credentials, but the SDK refuses
 * to sign a request without them, hence the placeholders.
 */
export function localAwsEnvironment(dynamoDbEndpoint: string): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_DYNAMODB: dynamoDbEndpoint,
    AWS_REGION: "local",
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    // The SDK warns on every process start that it will drop Node 20 in a future release: noise for
    // someone running a local cluster, and one line per agent of it.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
  };
}

/** Points this process's AWS SDK clients at the local cluster's store (the CLI, the supervisor). */
export function useLocalAws(dynamoDbEndpoint: string): void {
  Object.assign(process.env, localAwsEnvironment(dynamoDbEndpoint));
}
