import { expect, it } from "vitest";
import { StaleEpochError } from "../../agent/replication/errors.js";
import { pattern } from "../replication/harness.js";
import { MiB } from "../store/helpers.js";
import { type ChildNode, useCoordinatorSuite } from "./harness.js";
import { WriteLoad } from "./load.js";

const SIZE = 64 * MiB;
const suite = useCoordinatorSuite();

it("a remote replica killed under load is removed; the load goes on; acknowledged writes survive", async () => {
  const volume = await suite.createVolume(SIZE, ["in-process", "child", "child"]);
  const coordinator = await suite.attach(volume, "node-a");
  const attachedEpoch = coordinator.epoch;
  const load = new WriteLoad(coordinator, 64 * 1024, 512, 8).start();
  await load.acknowledged(200);
  const victim = volume.node("node-b") as ChildNode;
  await victim.kill();
  const after = load.count;
  await load.acknowledged(after + 300);
  await load.stop();
  expect(load.errors).toEqual([]);

  const record = await suite.store.volumes.get(volume.volumeId);
  expect(record.replicas.map(({ node, state }) => `${node}:${state}`)).toEqual([
    "node-a:in-sync",
    "node-b:failed",
    "node-c:in-sync",
  ]);
  expect(record.epoch).toBeGreaterThan(attachedEpoch);
  expect(coordinator.epoch).toBe(record.epoch);
  expect(await volume.node("node-a").epoch()).toBe(record.epoch);
  expect(await volume.node("node-c").epoch()).toBe(record.epoch);

  const local = volume.node("node-a").replica!;
  expect(await load.missing((offset, length) => local.read(offset, length))).toEqual([]);
  const remote = await volume.node("node-c").connect();
  expect(await load.missing((offset, length) => remote.read(volume.volumeId, offset, length))).toEqual([]);
  await remote.close();

  // The removed replica comes back with its old data: it refuses writes at the new epoch.
  await victim.restart();
  const returning = await victim.connect();
  const refused = await returning
    .write(volume.volumeId, record.epoch, 0, pattern(4096, 9), { fua: false })
    .then(
      () => undefined,
      (error: unknown) => error,
    );
  expect(refused).toBeInstanceOf(StaleEpochError);
  expect((await returning.getState(volume.volumeId)).epoch).toBeLessThan(record.epoch);
  await returning.close();
});
