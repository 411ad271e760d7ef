/** What the local S3 server's process (s3rver-main.ts) tells local-s3.ts over the IPC channel. */
export interface S3ServerMessage {
  kind: "listening";
  port: number;
}

/**
 * How long the server lets requests under way finish when told to stop before it exits anyway;
 * its parent kills it only after this and a margin.
 */
export const S3_STOP_GRACE_MS = 5_000;
