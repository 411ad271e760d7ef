import { Command } from "commander";
import { runningCluster } from "../cluster-dir.js";
import { contextOf } from "../context.js";
import { print } from "../output.js";
import { SupervisorClient } from "../supervisor-client.js";
import { supervisedNodeTable } from "../views.js";

/** A whole zone of the local cluster fails and comes back, as an AWS availability zone can. */
export function zoneCommand(): Command {
  const zone = new Command("zone").description("fail and restore a whole zone of the local cluster");

  for (const [change, description] of [
    ["fail", "the zone fails: its agents become unreachable and AWS starts a zonal autoshift away from it"],
    ["restore", "the zone returns: its agents serve again and the autoshift ends; replicas are re-spread"],
  ] as const) {
    zone
      .command(change)
      .description(description)
      .argument("<zone>", "zone name, e.g. local-b")
      .action(async (name: string, _options: object, command: Command) => {
        const context = contextOf(command);
        await runningCluster(context.dir);
        const changed = await new SupervisorClient(context.dir).changeZone(name, change);
        context.emit(changed, (view) => {
          print(`zone ${view.zone} ${change === "fail" ? "failed" : "restored"}`);
          print(supervisedNodeTable(view.nodes));
        });
      });
  }
  return zone;
}
