import { describe, expect, it } from "vitest";
import { formatSize, parseSize } from "../../core/units.js";

describe("sizes", () => {
  it("reads single-letter units as decimal and Ki/Mi/Gi/Ti/Pi as binary, as Kubernetes quantities do", () => {
    expect(parseSize("10G")).toBe(10 * 1000 ** 3);
    expect(parseSize("10Gi")).toBe(10 * 1024 ** 3);
    expect(parseSize("4k")).toBe(4000);
    expect(parseSize("4Ki")).toBe(4096);
    expect(parseSize("512M")).toBe(512 * 1000 ** 2);
    expect(parseSize("512Mi")).toBe(512 * 1024 ** 2);
    expect(parseSize("2T")).toBe(2 * 1000 ** 4);
    expect(parseSize("2Ti")).toBe(2 * 1024 ** 4);
    expect(parseSize("1P")).toBe(1000 ** 5);
    expect(parseSize("1Pi")).toBe(1024 ** 5);
  });

  it("keeps the spelled-out units: GiB binary, GB decimal", () => {
    expect(parseSize("10GiB")).toBe(10 * 1024 ** 3);
    expect(parseSize("10GB")).toBe(10 * 1000 ** 3);
    expect(parseSize("1.5TiB")).toBe(1.5 * 1024 ** 4);
    expect(parseSize("64MiB")).toBe(64 * 1024 ** 2);
    expect(parseSize("4096")).toBe(4096);
    expect(() => parseSize("10 lots")).toThrow(/^invalid size "10 lots"/);
  });

  it("formats with binary units", () => {
    expect(formatSize(10 * 1024 ** 3)).toBe("10 GiB");
    expect(formatSize(10 * 1000 ** 3)).toBe("9.3 GiB");
  });
});
