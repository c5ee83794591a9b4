// Score page: the form becomes a /dashboard/api/score request; the answer is shown in words.
import { SignedOut, el, millis, probability, problem, request, show, tier, words } from "./common.js";

const form = document.getElementById("score-form");
const result = document.getElementById("score-result");
const errors = document.getElementById("form-errors");
const submit = document.getElementById("score-submit");

const field = (name) => form.elements.namedItem(name);

function nowUtc() {
  return new Date().toISOString().slice(0, 19);
}

function newTransactionId() {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return "whatif-" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function fillDefaults() {
  if (!field("transaction_id").value) field("transaction_id").value = newTransactionId();
  if (!field("timestamp").value) field("timestamp").value = nowUtc();
}

function example() {
  field("transaction_id").value = newTransactionId();
  field("customer_id").value = field("customer_id").value || "C000123";
  field("terminal_id").value = field("terminal_id").value || "T000042";
  field("timestamp").value = nowUtc();
  field("amount").value = "1899.00";
  field("merchant_category").value = "electronics";
  field("channel").value = "online";
  field("entry_mode").value = "manual";
  field("is_foreign").checked = true;
  field("distance_from_home_km").value = "850";
}

/** The form as the API's JSON body (the timestamp is UTC). */
function body() {
  const value = (name) => field(name).value.trim();
  const payload = {
    transaction_id: value("transaction_id"),
    customer_id: value("customer_id"),
    terminal_id: value("terminal_id"),
    timestamp: value("timestamp") ? `${value("timestamp").length === 16 ? value("timestamp") + ":00" : value("timestamp")}Z` : "",
    amount: value("amount") === "" ? null : Number(value("amount")),
    merchant_category: value("merchant_category"),
    channel: value("channel"),
    entry_mode: value("entry_mode"),
    is_foreign: field("is_foreign").checked,
    distance_from_home_km: value("distance_from_home_km") === "" ? 0 : Number(value("distance_from_home_km")),
  };
  return payload;
}

function clearErrors() {
  errors.hidden = true;
  errors.replaceChildren();
  for (const node of form.querySelectorAll(".field-error")) node.remove();
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    const hint = input.dataset.hint;
    if (hint) input.setAttribute("aria-describedby", hint);
    else input.removeAttribute("aria-describedby");
  }
}

/** Mark each field the API refused, and list them at the top (focused, so it is read out). */
function showErrors(list) {
  const items = [];
  for (const { name, message } of list) {
    const input = field(name);
    const label = input ? form.querySelector(`label[for="${input.id}"]`).textContent : name;
    if (input) {
      const id = `e-${name}`;
      input.dataset.hint = input.getAttribute("aria-describedby") || "";
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", [id, input.dataset.hint].filter(Boolean).join(" "));
      input.closest(".field").append(el("p", { class: "field-error", id }, message));
      items.push(el("li", {}, el("a", { href: `#${input.id}` }, `${label}: ${message}`)));
    } else {
      items.push(el("li", {}, `${label}: ${message}`));
    }
  }
  errors.append(el("p", {}, el("strong", {}, "The transaction was not scored:")), el("ul", {}, items));
  errors.hidden = false;
  errors.focus();
}

function renderResult(data) {
  const a = data.answer;
  const x = data.explanation;
  const reasons = x.reasons.length
    ? el("ol", {}, x.reasons.map((r) => el("li", {}, r.text, " ", el("span", { class: "reason-code" }, `(${r.code}, ${words(r.source)})`))))
    : el("p", {}, "No feature pushed the score up.");
  const degraded = x.degraded.length
    ? [el("h3", {}, "What the score could not use"), el("ul", {}, x.degraded.map((d) => el("li", {}, d.text)))]
    : [];
  show(
    result,
    el("h2", { id: "h-result" }, "Result"),
    el("div", { class: "verdict" },
      el("span", { class: "probability", "data-result": "probability" }, probability(a.fraud_probability)),
      tier(a.risk_level),
      el("span", { class: "decision", "data-result": "decision" }, words(a.decision))),
    el("p", { class: "summary", "data-result": "summary" }, x.summary),
    el("h3", {}, "Why"),
    reasons,
    ...degraded,
    el("p", { class: "meta" },
      `Transaction ${a.transaction_id} · model ${a.model_version} (${words(a.decision_source)}) · ` +
      `autoencoder ${a.ae_score === null ? "–" : a.ae_score.toFixed(3)}, classifier ${a.clf_score === null ? "–" : a.clf_score.toFixed(3)} · ` +
      `${millis(a.latency_ms)} · not recorded (what-if)`),
  );
  document.body.dataset.scored = "true";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  fillDefaults();
  submit.disabled = true;
  submit.textContent = "Scoring…";
  try {
    const response = await request("/dashboard/api/score", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body()),
    });
    if (response.status === 422) {
      const detail = (await response.json()).detail;
      showErrors(detail.map((e) => ({ name: String((e.loc || []).at(-1)), message: e.msg })));
      return;
    }
    if (!response.ok) {
      showErrors([{ name: "request", message: await problem(response) }]);
      return;
    }
    renderResult(await response.json());
  } catch (error) {
    if (!(error instanceof SignedOut)) showErrors([{ name: "request", message: `the service did not answer (${error.message})` }]);
  } finally {
    submit.disabled = false;
    submit.textContent = "Score";
  }
});

document.getElementById("score-example").addEventListener("click", example);
fillDefaults();
