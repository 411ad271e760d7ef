import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";

/** `<data-dir>/agent.json`, written atomically by a listening agent (agent/main.ts). */
export const AGENT_FILE = "agent.json";

export const AgentFile = z.object({
  nodeId: z.string(),
  zone: z.string(),
  pid: z.number().int(),
  apiUrl: z.string(),
  nbdAddress: z.string(),
  nbdSocket: z.string().nullable(),
});
export type AgentFile = z.infer<typeof AgentFile>;

export const agentFilePath = (dataDir: string) => join(dataDir, AGENT_FILE);

/** undefined while the agent has not written it yet (or wrote something we cannot read). */
export async function readAgentFile(dataDir: string): Promise<AgentFile | undefined> {
  try {
    const parsed = AgentFile.safeParse(JSON.parse(await readFile(agentFilePath(dataDir), "utf8")));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
