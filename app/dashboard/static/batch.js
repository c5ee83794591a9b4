// Batch page: upload a CSV, follow the scoring stream, offer the scored file for download.
import { SignedOut, el, integer, problem, request, show, table, words } from "./common.js";

const form = document.getElementById("batch-form");
const input = document.getElementById("batch-file");
const submit = document.getElementById("batch-submit");
const progressBox = document.getElementById("batch-progress-box");
const progress = document.getElementById("batch-progress");
const statusLine = document.getElementById("batch-status");
const errorBox = document.getElementById("batch-error");
const summary = document.getElementById("batch-summary");
const downloadWrap = document.getElementById("batch-download-wrap");
const download = document.getElementById("batch-download");
const invalidPanel = document.getElementById("batch-invalid");
const maxBytes = Number(document.querySelector('[data-limit="bytes"]').dataset.value);
let lastUrl = null;

function fail(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
  errorBox.focus?.();
}

function reset() {
  errorBox.hidden = true;
  summary.hidden = true;
  downloadWrap.hidden = true;
  invalidPanel.hidden = true;
  document.getElementById("batch-idle").hidden = true;
  progressBox.hidden = false;
  progress.max = 1;
  progress.value = 0;
  if (lastUrl) URL.revokeObjectURL(lastUrl);
  lastUrl = null;
  delete document.body.dataset.batch;
}

function showInvalid(event) {
  if (!event.invalid) return;
  const listed = event.errors.length;
  document.getElementById("batch-invalid-note").textContent =
    `${integer(event.invalid)} of ${integer(event.rows)} rows failed the API's checks` +
    (listed < event.invalid ? `; the first ${listed} are listed. ` : ". ") +
    "They stay in the scored file, in place, with the reason in the error column.";
  show(document.getElementById("batch-invalid-table"), table("Rows that could not be scored", [
    { label: "Line", numeric: true }, { label: "Transaction id" }, { label: "Problem" },
  ], event.errors.map((e) => [String(e.line), e.transaction_id || "–", e.error]), { rowHeader: false }));
  invalidPanel.hidden = false;
}

function showDone(event, file, parts) {
  const blob = new Blob(parts, { type: "text/csv" });
  lastUrl = URL.createObjectURL(blob);
  download.href = lastUrl;
  download.download = file.name.replace(/\.csv$/i, "") + "-scored.csv";
  const decisions = Object.entries(event.decisions).map(([d, n]) => `${words(d)} ${integer(n)}`).join(", ") || "none";
  show(summary, el("p", { class: "alert ok" },
    `Scored ${integer(event.scored)} of ${integer(event.rows)} rows in ${event.seconds.toFixed(1)} s ` +
    `with model ${event.model_version}; ${integer(event.invalid)} invalid. Decisions: ${decisions}.`));
  summary.hidden = false;
  downloadWrap.hidden = false;
  statusLine.textContent = `Done: ${integer(event.rows)} rows.`;
  document.body.dataset.batch = "done";
}

async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line.trim()) onEvent(JSON.parse(line));
    }
  }
  if (buffered.trim()) onEvent(JSON.parse(buffered));
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = input.files[0];
  if (!file) {
    fail("Choose a CSV file first.");
    input.focus();
    return;
  }
  reset();
  if (file.size > maxBytes) {
    progressBox.hidden = true;
    fail(`The file is ${integer(file.size)} bytes; the limit is ${integer(maxBytes)}. Split it into smaller files.`);
    return;
  }
  submit.disabled = true;
  statusLine.textContent = `Uploading ${file.name}…`;
  progress.removeAttribute("value"); // indeterminate until the rows are counted
  const parts = [];
  let finished = false;
  try {
    const response = await request("/dashboard/api/batch", {
      method: "POST",
      headers: { "Content-Type": "text/csv" },
      body: file,
    });
    if (!response.ok) {
      progressBox.hidden = true;
      fail(`The file was not scored: ${await problem(response)}`);
      return;
    }
    let total = 0;
    await readEvents(response, (e) => {
      if (e.event === "accepted") {
        total = e.rows;
        progress.max = total;
        progress.value = 0;
        parts.push(e.header);
        showInvalid(e);
        statusLine.textContent = `Scoring ${integer(total)} rows…`;
      } else if (e.event === "chunk") {
        parts.push(e.csv);
        progress.value = e.done;
        statusLine.textContent = `${integer(e.done)} of ${integer(total)} rows (${Math.round((100 * e.done) / total)} %)`;
      } else if (e.event === "done") {
        finished = true;
        progress.value = total;
        showDone(e, file, parts);
      } else if (e.event === "failed") {
        finished = true;
        fail(`Scoring stopped part way: ${e.message}`);
      }
    });
    if (!finished) fail("The connection closed before the file was scored; try again.");
  } catch (error) {
    if (!(error instanceof SignedOut)) fail(`The upload failed: ${error.message}`);
  } finally {
    submit.disabled = false;
  }
});
