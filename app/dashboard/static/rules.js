// Rules page: the set in force is rendered on the server; this module runs the dry-run
// form and draws its report (or the rule set's validation message).
import { el, integer, percent, problem, request, show, table, words } from "./common.js";

const form = document.getElementById("dry-run-form");
const submit = document.getElementById("dry-run-submit");
const status = document.getElementById("dry-run-status");
const errorBox = document.getElementById("dry-run-error");
const message = document.getElementById("dry-run-message");
const result = document.getElementById("dry-run-result");

const utc = (local) => (local.length === 16 ? `${local}:00Z` : `${local}Z`);
const ratio = (x) => percent(x);

function wrap(label, node) {
  return el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": label }, node);
}

function summary(out) {
  const r = out.report;
  const facts = [
    ["Rows", integer(r.rows)],
    ["Labelled", integer(r.labelled)],
    ["Frauds", integer(r.frauds)],
    ["Decisions changed", integer(r.changed)],
    ["Candidate", out.rule_set],
    ["Against", out.baseline || "the model alone"],
  ];
  return el(
    "dl",
    { class: "facts", id: "dry-run-facts" },
    facts.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", { "data-fact": words(k) }, v))),
  );
}

function alerts(r) {
  const rows = [];
  for (const [name, stats] of [["Flagged (not approve)", r.flagged], ["Declined", r.declined]]) {
    for (const when of ["before", "after"]) {
      const s = stats[when];
      rows.push([`${name}, ${when}`, integer(s.count), ratio(s.precision), ratio(s.recall)]);
    }
  }
  const columns = [
    { label: "Alerts" },
    { label: "Count", numeric: true },
    { label: "Precision", numeric: true },
    { label: "Recall", numeric: true },
  ];
  return wrap("Alerts before and after", table("Alerts before and after", columns, rows));
}

function perRule(r) {
  const columns = [
    { label: "Rule" },
    { label: "Stage" },
    { label: "Matches", numeric: true },
    { label: "Labelled matches", numeric: true },
    { label: "Precision", numeric: true },
    { label: "Recall", numeric: true },
    { label: "Decisions changed", numeric: true },
  ];
  const rows = r.rules.map((s) => [
    el("code", {}, s.id),
    s.enabled ? s.stage : `${s.stage} (disabled)`,
    integer(s.matches),
    integer(s.labelled_matches),
    ratio(s.precision),
    ratio(s.recall),
    integer(s.decisions_changed),
  ]);
  return wrap("Per rule", table("Per rule", columns, rows));
}

function transitions(r) {
  const entries = Object.entries(r.transitions);
  if (!entries.length) return el("p", {}, "No decision would change.");
  const columns = [{ label: "Before → after" }, { label: "Rows", numeric: true }];
  const rows = entries.map(([k, n]) => [k.replace("->", " → "), integer(n)]);
  return wrap("Decision changes", table("Decision changes", columns, rows));
}

function draw(out) {
  const notes = [];
  if (out.truncated) notes.push(el("p", { class: "alert warn" }, "More rows than the limit: the newest were read."));
  if (out.features_missing) {
    notes.push(el("p", { class: "alert warn" }, `${integer(out.features_missing)} rows had no recorded feature values: rules on features do not match them.`));
  }
  const r = out.report;
  show(result, el("h3", {}, "Report"), notes, summary(out), alerts(r), transitions(r), perRule(r));
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorBox.hidden = true;
  submit.disabled = true;
  status.textContent = "Running…";
  const body = {
    rules: form.elements.rules.value,
    since: utc(form.elements.since.value),
    until: utc(form.elements.until.value),
  };
  try {
    const response = await request("/dashboard/api/rules/dry-run", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      show(result);
      message.textContent = await problem(response);
      errorBox.hidden = false;
      errorBox.focus();
      status.textContent = "";
      return;
    }
    const out = await response.json();
    draw(out);
    status.textContent = `Done: ${integer(out.report.rows)} rows, ${integer(out.report.changed)} decisions changed.`;
    document.body.dataset.dryRun = "done";
  } finally {
    submit.disabled = false;
  }
});
