/**
 * The few XML documents the query protocols answer with, written from plain objects. Only writing
 * is needed (requests arrive form-encoded), so a dozen lines replace an XML library.
 *
 * An object becomes one element per member in member order, an array one child element per entry
 * (named `item` in EC2's dialect, `member` in the AWS query protocol's), a Date its ISO 8601 form,
 * and undefined nothing at all.
 */
export type XmlValue = string | number | boolean | Date | undefined | XmlValue[] | XmlObject;
export interface XmlObject {
  [name: string]: XmlValue;
}

export type XmlListItem = "item" | "member";

export function xmlDocument(
  root: string,
  namespace: string,
  content: XmlObject,
  listItem: XmlListItem,
): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${escapeXml(namespace)}">${children(content, listItem)}</${root}>`;
}

function children(content: XmlObject, listItem: XmlListItem): string {
  return Object.entries(content)
    .map(([name, value]) => element(name, value, listItem))
    .join("");
}

function element(name: string, value: XmlValue, listItem: XmlListItem): string {
  if (value === undefined) return "";
  return `<${name}>${text(value, listItem)}</${name}>`;
}

function text(value: Exclude<XmlValue, undefined>, listItem: XmlListItem): string {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((entry) => element(listItem, entry, listItem)).join("");
  if (typeof value === "object") return children(value, listItem);
  return escapeXml(String(value));
}

const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&apos;",
};

export const escapeXml = (value: string) => value.replace(/[&<>"']/g, (char) => ENTITIES[char]!);
