import { randomBytes } from "node:crypto";
import { invalid } from "../errors.js";

/**
 * Where a cloudsnap repository keeps what, in one bucket. Everything of a volume lives under its
 * id, so volumes never share a mutable object and clusters sharing the bucket never write the same
 * key:
 *
 *   volumes/<volumeId>/key.json                 the volume's wrapped data key, written once
 *   volumes/<volumeId>/catalog.json             its cloudsnaps, oldest first: rewritten whole, last
 *   volumes/<volumeId>/manifests/<cloudsnapId>  one sealed manifest per cloudsnap
 *   volumes/<volumeId>/packs/<packId>           packs of sealed chunks
 *
 * Listing a volume's cloudsnaps reads its catalog, and a restore reads the catalog, one manifest
 * and byte ranges of the packs it names: no LIST. A cloudsnap id starts with its volume's id, so
 * an id alone finds the catalog, in any cluster.
 */
const VOLUMES_PREFIX = "volumes/";

export const volumePrefix = (volumeId: string) => `${VOLUMES_PREFIX}${volumeId}/`;
export const keyObject = (volumeId: string) => `${volumePrefix(volumeId)}key.json`;
export const catalogObject = (volumeId: string) => `${volumePrefix(volumeId)}catalog.json`;
export const manifestsPrefix = (volumeId: string) => `${volumePrefix(volumeId)}manifests/`;
export const manifestObject = (volumeId: string, cloudsnapId: string) =>
  `${manifestsPrefix(volumeId)}${cloudsnapId}`;
export const packsPrefix = (volumeId: string) => `${volumePrefix(volumeId)}packs/`;
export const packObject = (volumeId: string, packId: string) => `${packsPrefix(volumeId)}${packId}`;

const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const CLOUDSNAP_ID = new RegExp(`^(${UUID})-(\\d{8}T\\d{9}Z)$`);
const PACK_ID = /^[0-9a-f]{32}$/;

/** A cloudsnap's time in its id and its snapshot's name: UTC to the millisecond, e.g. 20261203T093437190Z. */
export function cloudsnapStamp(at: Date): string {
  return at.toISOString().replace(/[-:.]/g, "");
}

/** `<volumeId>-<stamp>`: unique per volume, as uploads of one volume never overlap. */
export function newCloudsnapId(volumeId: string, at: Date): string {
  return `${volumeId}-${cloudsnapStamp(at)}`;
}

/** The volume a cloudsnap id belongs to, or an error saying what a cloudsnap id looks like. */
export function volumeOfCloudsnap(cloudsnapId: string): string {
  const match = CLOUDSNAP_ID.exec(cloudsnapId);
  if (match === null) {
    throw invalid(
      `"${cloudsnapId}" is not a cloudsnap id (expected <volume id>-<UTC time>, as \`strata cloudsnap list\` shows)`,
    );
  }
  return match[1]!;
}

/** 128 random bits: packs of concurrent uploads and of garbage collection never collide. */
export function newPackId(): string {
  return randomBytes(16).toString("hex");
}

export function isPackId(id: string): boolean {
  return PACK_ID.test(id);
}
