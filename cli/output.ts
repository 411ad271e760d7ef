/**
 * Everything `strata` prints on stdout goes through here: kubectl-style tables, `Key: value`
 * descriptions, and the raw JSON of --json.
 */

export type Cell = string | number;

/** Upper-case headers, columns padded with spaces to line up, three spaces between them. */
export function formatTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const lines = [headers.map((header) => header.toUpperCase()), ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, column) => Math.max(...lines.map((line) => (line[column] ?? "").length)));
  return lines
    .map((line) =>
      line
        .map((cell, column) => (column === line.length - 1 ? cell : cell.padEnd(widths[column]!)))
        .join("   ")
        .trimEnd(),
    )
    .join("\n");
}

/** `Key:   value` lines with the values aligned, like `kubectl describe`. */
export function formatDetails(fields: readonly (readonly [string, Cell])[]): string {
  const width = Math.max(...fields.map(([key]) => key.length)) + 1;
  return fields.map(([key, value]) => `${`${key}:`.padEnd(width)}  ${value}`).join("\n");
}

export const indent = (text: string, by = "  ") =>
  text
    .split("\n")
    .map((line) => `${by}${line}`)
    .join("\n");

export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Something the operator should know that is not an error: on stderr, so scripts' stdout stays clean. */
export function warn(text: string): void {
  process.stderr.write(`warning: ${text}\n`);
}

export function printJson(value: unknown): void {
  print(JSON.stringify(value, null, 2));
}
