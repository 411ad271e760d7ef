import { DEFAULT_PREFIX, stateMachineName, type WorkflowName } from "../workflows.js";

/**
 * The local cloud's names that its readers need without loading it (the CLI reads the event log
 * and finds the state machines; loading the cloud would load the workflow engine on every command).
 */

/** `<dir>/events.jsonl`: every event put on the local bus, for `strata events`. */
export const EVENTS_FILE = "events.jsonl";

/** The state machine that runs `workflow` in the local cloud. */
export const workflowMachine = (workflow: WorkflowName) => stateMachineName(DEFAULT_PREFIX, workflow);
