export { EpochConflictError, RecordExistsError, RecordNotFoundError } from "./errors.js";
export type { Heartbeat } from "./nodes.js";
export type { NewOperation, OperationOutcome } from "./operations.js";
export * from "./records.js";
export type { NewSnapshot } from "./snapshots.js";
export { StateStore, type StateStoreOptions } from "./store.js";
export { ensureStateTable, stateTableDefinition } from "./table.js";
export type { NewVolume } from "./volumes.js";
