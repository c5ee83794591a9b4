// Shared helpers of the dashboard pages: requests, safe DOM building, number formats.
// Text always goes in through textContent, never innerHTML.

export class SignedOut extends Error {}

/** fetch() on the dashboard's own origin; a 401 sends the browser to the sign-in page. */
export async function request(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401 && !path.endsWith("/session")) {
    const next = encodeURIComponent(window.location.pathname);
    window.location.assign(`/dashboard/login?next=${next}`);
    throw new SignedOut("signed out");
  }
  return response;
}

/** The error message of a failed response: the API's `detail`, or the status line. */
export async function problem(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) {
      return body.detail.map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ");
    }
  } catch {
    // not JSON: fall through
  }
  return `${response.status} ${response.statusText || "error"}`;
}

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A table: `columns` are {label, numeric?}; `rows` are arrays of strings or nodes. */
export function table(caption, columns, rows, { rowHeader = true } = {}) {
  const head = el("tr", {}, columns.map((c) => el("th", { scope: "col", class: c.numeric ? "num" : null }, c.label)));
  const body = rows.map((cells) =>
    el(
      "tr",
      {},
      cells.map((cell, i) => {
        const numeric = columns[i] && columns[i].numeric;
        if (i === 0 && rowHeader) return el("th", { scope: "row" }, cell);
        return el("td", { class: numeric ? "num" : columns[i] && columns[i].class }, cell);
      }),
    ),
  );
  return el("table", {}, el("caption", {}, caption), el("thead", {}, head), el("tbody", {}, body));
}

/** Replace the children of `target` with `nodes`. */
export function show(target, ...nodes) {
  target.replaceChildren(...nodes.flat());
}

export const integer = (n) => (n === null || n === undefined ? "–" : Math.round(n).toLocaleString("en-GB"));
export const percent = (x, digits = 1) =>
  x === null || x === undefined ? "–" : `${(x * 100).toFixed(digits)} %`;
export const probability = (x) => (x === null || x === undefined ? "–" : x.toFixed(3));
export const money = (x) =>
  x === null || x === undefined ? "–" : x.toLocaleString("en-GB", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
export const millis = (x) => (x === null || x === undefined ? "–" : `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`);
export const clock = (epochSeconds) =>
  new Date(epochSeconds * 1000).toISOString().slice(11, 19) + " UTC";
export const words = (s) => String(s).replaceAll("_", " ");

/** A risk tier as a coloured badge that also says its name. */
export function tier(level) {
  return el("span", { class: `tier tier-${level}` }, level);
}

function wireSignOut() {
  const button = document.getElementById("sign-out");
  if (!button) return;
  button.addEventListener("click", async () => {
    await fetch("/dashboard/api/session", { method: "DELETE", credentials: "same-origin" });
    window.location.assign("/dashboard/login");
  });
}

wireSignOut();
