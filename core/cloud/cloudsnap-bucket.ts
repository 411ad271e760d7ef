import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  type S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";

/** A cloudsnap object that should exist does not: named, so the operator knows what is gone. */
export class MissingObjectError extends Error {
  constructor(readonly location: string) {
    super(`${location} is missing`);
  }
}

/** DeleteObjects takes at most this many keys per request. */
const DELETE_BATCH = 1000;

/**
 * The bucket as cloudsnaps use it: whole-object puts of buffers (never streamed: s3rver corrupts
 * streamed bodies, and a pack is built in memory anyway), gets of whole objects or byte ranges, and
 * errors that name the object (`s3://bucket/key`) instead of the SDK's bare ones.
 */
export class CloudsnapBucket {
  constructor(
    private readonly client: S3Client,
    readonly name: string,
  ) {}

  where(key: string): string {
    return `s3://${this.name}/${key}`;
  }

  async put(key: string, body: Buffer, contentType = "application/octet-stream"): Promise<void> {
    await this.call(key, "write", () =>
      this.client.send(
        new PutObjectCommand({ Bucket: this.name, Key: key, Body: body, ContentType: contentType }),
      ),
    );
  }

  /** The object's bytes, or a range of them (`length` bytes from `offset`). */
  async get(key: string, range?: { offset: number; length: number }): Promise<Buffer> {
    const body = await this.call(key, "read", async () => {
      const response = await this.client.send(
        new GetObjectCommand({
          Bucket: this.name,
          Key: key,
          ...(range === undefined
            ? {}
            : { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` }),
        }),
      );
      if (response.Body === undefined) throw new Error("the response has no body");
      // The SDK gathers the body into a new array of its own: wrap it rather than copy it again
      // (a restore reads 16 MiB ranges, and a second copy of each showed in its CPU and its GC).
      const bytes = await response.Body.transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    });
    if (range !== undefined && body.length !== range.length) {
      throw new Error(
        `${this.where(key)} is shorter than expected: ${body.length} bytes at ${range.offset}, ${range.length} expected`,
      );
    }
    return body;
  }

  /** Like get, but undefined for an object that does not exist (a volume's first catalog). */
  async getIfExists(key: string): Promise<Buffer | undefined> {
    try {
      return await this.get(key);
    } catch (error) {
      if (error instanceof MissingObjectError) return undefined;
      throw error;
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (let start = 0; start < keys.length; start += DELETE_BATCH) {
      const batch = keys.slice(start, start + DELETE_BATCH);
      const response = await this.call(batch[0]!, "delete", () =>
        this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.name,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        ),
      );
      const failed = response.Errors?.[0];
      if (failed !== undefined) {
        throw new Error(`cannot delete ${this.where(failed.Key ?? "?")}: ${failed.Message ?? failed.Code}`);
      }
    }
  }

  /**
   * The objects under `prefix`, with their sizes. Only garbage collection lists; listing and
   * restoring a volume's cloudsnaps never do.
   */
  async *list(prefix: string): AsyncIterable<{ key: string; size: number }> {
    let token: string | undefined;
    do {
      const page = await this.call(prefix, "list", () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.name,
            Prefix: prefix,
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
        ),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key !== undefined) yield { key: object.Key, size: object.Size ?? 0 };
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  private async call<T>(key: string, verb: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      if (error instanceof NoSuchKey || (error instanceof S3ServiceException && error.name === "NoSuchKey")) {
        throw new MissingObjectError(this.where(key));
      }
      throw new Error(`cannot ${verb} ${this.where(key)}: ${whyFailed(error)}`, { cause: error });
    }
  }
}

/** What went wrong, in words: an S3 error's code and message, or a network error's code. */
function whyFailed(error: unknown): string {
  if (error instanceof S3ServiceException) return `${error.name}: ${error.message}`;
  if (!(error instanceof Error)) return String(error);
  // A refused connection reaches here as an AggregateError with an empty message and a code.
  const code = (error as NodeJS.ErrnoException).code;
  return error.message || code || error.name;
}
