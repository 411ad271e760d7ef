/**
 * One volume's replica on another node, seen as a BlockDevice: the coordinator can treat local
 * and remote replicas alike. Every mutation carries `epoch`, which the coordinator moves forward
 * (after the replica's setEpoch) when the replica set changes; reads carry it too, so a fenced
 * coordinator cannot read either.
 */
import type { BlockDevice, WriteOptions, WriteZeroesOptions } from "../block-device.js";
import type { ReplicaClient } from "./client.js";

export class RemoteReplica implements BlockDevice {
  constructor(
    private readonly client: ReplicaClient,
    readonly volumeId: string,
    readonly sizeBytes: number,
    public epoch: number,
  ) {}

  read(offset: number, length: number): Promise<Buffer> {
    return this.client.read(this.volumeId, offset, length, { epoch: this.epoch });
  }

  write(offset: number, data: Buffer, options: WriteOptions): Promise<void> {
    return this.client.write(this.volumeId, this.epoch, offset, data, options);
  }

  writeZeroes(offset: number, length: number, options: WriteZeroesOptions): Promise<void> {
    return this.client.writeZeroes(this.volumeId, this.epoch, offset, length, options);
  }

  trim(offset: number, length: number, options: WriteOptions): Promise<void> {
    return this.client.trim(this.volumeId, this.epoch, offset, length, options);
  }

  flush(): Promise<void> {
    return this.client.flush(this.volumeId, this.epoch);
  }
}
