/**
 * Mutual challenge-response authentication with the cluster secret, which never crosses the wire:
 *
 *   client → HELLO     client nonce (32 random bytes)
 *   server → CHALLENGE server nonce ‖ HMAC(secret, "server" ‖ client nonce ‖ server nonce)
 *   client → AUTH      HMAC(secret, "client" ‖ client nonce ‖ server nonce)
 *   server → AUTH_OK   (or ERROR AUTH_FAILED, then close)
 *
 * Both nonces enter both proofs, so neither side can replay an old exchange; the role label makes
 * a proof from one direction useless in the other (no reflection). Proofs are compared with
 * timingSafeEqual. The two state machines below only compute steps; the connections drive them.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Frame } from "./frame-codec.js";
import { FrameType } from "./protocol.js";

export const NONCE_BYTES = 32;
const PROOF_BYTES = 32; // SHA-256
/** Shorter secrets could be brute-forced offline from one captured exchange. */
export const MIN_SECRET_BYTES = 16;
/** A peer that has not authenticated by then is dropped: it would otherwise hold a socket forever. */
export const HANDSHAKE_TIMEOUT_MS = 5000;

const SERVER_LABEL = Buffer.from("strata-replication-v1 server");
const CLIENT_LABEL = Buffer.from("strata-replication-v1 client");

export type ClusterSecret = string | Buffer;

/** What a handshake step asks its connection to do. */
export type HandshakeStep =
  | { kind: "send"; type: number; payload: Buffer }
  /** Authenticated; `send` (if any) goes out first. */
  | { kind: "done"; send?: { type: number; payload: Buffer } }
  | { kind: "refuse"; reason: string };

export function secretBytes(secret: ClusterSecret): Buffer {
  const bytes = typeof secret === "string" ? Buffer.from(secret, "utf8") : secret;
  if (bytes.length < MIN_SECRET_BYTES) {
    throw new Error(`the replication secret must be at least ${MIN_SECRET_BYTES} bytes`);
  }
  return bytes;
}

function proof(secret: Buffer, label: Buffer, clientNonce: Buffer, serverNonce: Buffer): Buffer {
  return createHmac("sha256", secret).update(label).update(clientNonce).update(serverNonce).digest();
}

function proofMatches(expected: Buffer, received: Buffer): boolean {
  return received.length === expected.length && timingSafeEqual(expected, received);
}

export class ServerHandshake {
  private clientNonce: Buffer | undefined;
  private readonly serverNonce = randomBytes(NONCE_BYTES);

  constructor(private readonly secret: Buffer) {}

  step(frame: Frame): HandshakeStep {
    if (this.clientNonce === undefined) {
      if (frame.type !== FrameType.HELLO || frame.payload.length !== NONCE_BYTES) {
        return { kind: "refuse", reason: "expected HELLO with a nonce" };
      }
      // Copied: the payload may be a view into a socket chunk that is reused.
      this.clientNonce = Buffer.from(frame.payload);
      const serverProof = proof(this.secret, SERVER_LABEL, this.clientNonce, this.serverNonce);
      return {
        kind: "send",
        type: FrameType.CHALLENGE,
        payload: Buffer.concat([this.serverNonce, serverProof]),
      };
    }
    if (frame.type !== FrameType.AUTH) return { kind: "refuse", reason: "expected AUTH" };
    const expected = proof(this.secret, CLIENT_LABEL, this.clientNonce, this.serverNonce);
    if (!proofMatches(expected, frame.payload)) {
      return { kind: "refuse", reason: "the peer does not hold the cluster secret" };
    }
    return { kind: "done", send: { type: FrameType.AUTH_OK, payload: Buffer.alloc(0) } };
  }
}

export class ClientHandshake {
  private readonly clientNonce = randomBytes(NONCE_BYTES);
  private proved = false;

  constructor(private readonly secret: Buffer) {}

  /** The HELLO payload. */
  hello(): Buffer {
    return this.clientNonce;
  }

  step(frame: Frame): HandshakeStep {
    if (!this.proved) {
      if (frame.type !== FrameType.CHALLENGE || frame.payload.length !== NONCE_BYTES + PROOF_BYTES) {
        return { kind: "refuse", reason: "expected CHALLENGE" };
      }
      const serverNonce = frame.payload.subarray(0, NONCE_BYTES);
      const expected = proof(this.secret, SERVER_LABEL, this.clientNonce, serverNonce);
      if (!proofMatches(expected, frame.payload.subarray(NONCE_BYTES))) {
        return { kind: "refuse", reason: "the server does not hold the cluster secret" };
      }
      this.proved = true;
      return {
        kind: "send",
        type: FrameType.AUTH,
        payload: proof(this.secret, CLIENT_LABEL, this.clientNonce, serverNonce),
      };
    }
    if (frame.type !== FrameType.AUTH_OK) return { kind: "refuse", reason: "expected AUTH_OK" };
    return { kind: "done" };
  }
}
