/**
 * Tiny XML writer for the AWS stand-in's Query-protocol answers (EC2 and STS).
 * Plain objects become elements, arrays become `<item>` (EC2) or `<member>` (awsQuery) children,
 * undefined/null members are left out, Dates are written as ISO 8601.
 */

export type XmlValue = string | number | boolean | Date | null | undefined | XmlValue[] | XmlObject;
export interface XmlObject {
  [element: string]: XmlValue;
}

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

function scalar(value: string | number | boolean | Date): string {
  return escapeXml(value instanceof Date ? value.toISOString() : String(value));
}

function children(obj: XmlObject, listItem: string): string {
  let out = "";
  for (const [name, value] of Object.entries(obj)) {
    out += element(name, value, listItem);
  }
  return out;
}

function element(name: string, value: XmlValue, listItem: string): string {
  if (value === undefined || value === null) return "";
  if (Array.isArray(value)) {
    return `<${name}>${value.map((v) => element(listItem, v, listItem)).join("")}</${name}>`;
  }
  if (typeof value === "object" && !(value instanceof Date)) {
    return `<${name}>${children(value, listItem)}</${name}>`;
  }
  return `<${name}>${scalar(value)}</${name}>`;
}

/** Render a whole document: `<root xmlns="...">...body...</root>`. */
export function renderXml(
  root: string,
  body: XmlObject,
  opts: { xmlns?: string; listItem: "item" | "member" },
): string {
  const ns = opts.xmlns ? ` xmlns="${escapeXml(opts.xmlns)}"` : "";
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root}${ns}>${children(body, opts.listItem)}</${root}>`;
}
