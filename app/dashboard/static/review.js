// Review page: the queue from /dashboard/api/review/queue, one card per entry, with
// Claim / Release and, for an entry you hold, the outcome form.
import { el, integer, money, problem, probability, request, show, tier, words } from "./common.js";

const root = document.getElementById("review-root");
const me = root.dataset.analyst;
const list = document.getElementById("review-list");
const filter = document.getElementById("review-status");
const statusText = document.getElementById("review-status-text");
const errorBox = document.getElementById("review-error");

function age(seconds) {
  if (seconds === null || seconds === undefined) return "none";
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

const when = (iso) => (iso ? `${iso.slice(0, 19).replace("T", " ")} UTC` : "–");
const codes = (values) => (values.length ? values.map((v) => el("code", {}, v)).flatMap((c, i) => (i ? [", ", c] : [c])) : "none");

function counts(c) {
  for (const name of ["open", "claimed", "resolved"]) {
    document.querySelector(`[data-count="${name}"]`).textContent = integer(c[name]);
  }
  document.querySelector('[data-count="oldest_open"]').textContent = age(c.oldest_open_seconds);
}

async function act(path, body) {
  errorBox.hidden = true;
  const response = await request(`/dashboard/api/review/${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  if (!response.ok) {
    errorBox.textContent = await problem(response);
    errorBox.hidden = false;
    return false;
  }
  return true;
}

function outcomeForm(item, key) {
  const choices = ["fraud", "legitimate", "unsure"].map((value) =>
    el(
      "div",
      { class: "field check" },
      el("input", { type: "radio", name: `outcome-${key}`, id: `o-${key}-${value}`, value, required: true }),
      el("label", { for: `o-${key}-${value}` }, value),
    ),
  );
  const note = el("textarea", { id: `n-${key}`, name: "note", rows: "2", maxlength: "500" });
  const form = el(
    "form",
    { class: "form outcome-form", "data-outcome-for": item.transaction_id, novalidate: true },
    el("fieldset", {}, el("legend", {}, "Outcome"), choices),
    el("div", { class: "field" }, el("label", { for: `n-${key}` }, "Note (optional)"), note),
    el("button", { type: "submit", class: "button" }, "Record outcome"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const picked = form.querySelector("input[type=radio]:checked");
    if (!picked) {
      errorBox.textContent = "Choose fraud, legitimate or unsure first.";
      errorBox.hidden = false;
      return;
    }
    const tx = encodeURIComponent(item.transaction_id);
    if (await act(`${tx}/outcome`, { outcome: picked.value, note: note.value })) {
      await load(false); // the list first, so the status never announces a stale one
      statusText.textContent = `Recorded ${picked.value} for ${item.transaction_id}.`;
    }
  });
  return form;
}

function button(label, path, secondary) {
  const node = el("button", { type: "button", class: secondary ? "button secondary" : "button" }, label);
  node.addEventListener("click", async () => {
    node.disabled = true;
    if (await act(path)) await load(false);
    node.disabled = false;
  });
  return node;
}

function holder(item) {
  if (item.status === "resolved") {
    return `resolved: ${item.outcome} by ${item.decided_by} at ${when(item.decided_at)}`;
  }
  if (item.status === "claimed") return `claimed by ${item.claimed_by === me ? "you" : item.claimed_by}`;
  return "open";
}

function card(item, index) {
  const tx = encodeURIComponent(item.transaction_id);
  const facts = [
    ["Time", when(item.tx_time)],
    ["Amount", money(item.amount)],
    ["Customer", item.customer_id || "–"],
    ["Terminal", item.terminal_id || "–"],
    ["Merchant category", item.merchant_category ? words(item.merchant_category) : "–"],
    ["Probability", probability(item.fraud_probability)],
    ["Decision", item.decision ? [words(item.decision), " ", item.risk_level ? tier(item.risk_level) : ""] : "–"],
    ["Reasons", codes(item.reasons)],
    ["Matched rules", codes(item.rules)],
    ["Queued because", item.why],
  ];
  const children = [
    el("h3", {}, el("code", {}, item.transaction_id), " ", el("span", { class: "badge warn", "data-item-status": "" }, holder(item))),
    el("dl", { class: "facts" }, facts.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v)))),
  ];
  if (item.status === "resolved" && item.note) children.push(el("p", {}, "Note: ", item.note));
  const mine = item.status === "claimed" && item.claimed_by === me;
  if (item.status === "open" || (item.status === "claimed" && !mine)) {
    children.push(el("div", { class: "actions" }, button("Claim", `${tx}/claim`, false)));
  }
  if (mine) {
    children.push(outcomeForm(item, index), el("div", { class: "actions" }, button("Release", `${tx}/release`, true)));
  }
  return el("article", { class: "queue-item", "data-tx": item.transaction_id }, children);
}

async function fetchQueue(status) {
  const response = await request(`/dashboard/api/review/queue?status=${status}&limit=100`);
  if (!response.ok) {
    errorBox.textContent = await problem(response);
    errorBox.hidden = false;
    return null;
  }
  return response.json();
}

async function load(clearError = true) {
  if (clearError) errorBox.hidden = true;
  const out = await fetchQueue(encodeURIComponent(filter.value));
  if (out === null) return;
  let items = out.items;
  if (filter.value === "open") {
    // The entries you hold stay in view (first) until you record them or give them back.
    const claimed = await fetchQueue("claimed");
    if (claimed === null) return;
    items = claimed.items.filter((item) => item.claimed_by === me).concat(items);
  }
  counts(out.counts);
  show(list, items.length ? items.map(card) : el("p", {}, `No ${filter.value === "all" ? "" : `${filter.value} `}entries.`));
  if (clearError) statusText.textContent = `${integer(items.length)} shown`;
  document.body.dataset.loaded = "true";
}

filter.addEventListener("change", () => load());
load();
