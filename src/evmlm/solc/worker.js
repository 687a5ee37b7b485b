// evmlm solc worker: one long-lived node process per solc-js version.
// Usage: node worker.js MODULE_DIR
// Reads newline-delimited JSON jobs {"id": N, "input": "<standard JSON input string>"} on stdin,
// writes one line {"id": N, "output": "<standard JSON output string>"} per job on stdout.
// All sources are supplied by the caller, so the import callback always answers "not found".
"use strict";
const readline = require("readline");
const solc = require(process.argv[2]);
const version = solc.version();
const m = /^(\d+)\.(\d+)\./.exec(version);
const minor = m ? parseInt(m[2], 10) : 8;
const major = m ? parseInt(m[1], 10) : 0;

function findImports(path) {
  return { error: "File not found (evmlm supplies every source; check remappings): " + path };
}

function compile(input) {
  if (major === 0 && minor <= 4) return solc.compileStandardWrapper(input, findImports);
  if (major === 0 && minor === 5) return solc.compile(input, findImports);
  return solc.compile(input, { import: findImports });
}

process.stdout.write(JSON.stringify({ ready: true, version: version }) + "\n");
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
rl.on("line", (line) => {
  if (!line.trim()) return;
  let job;
  try {
    job = JSON.parse(line);
  } catch (e) {
    process.stdout.write(JSON.stringify({ id: null, fatal: "bad job line: " + e.message }) + "\n");
    return;
  }
  let output;
  try {
    output = compile(job.input);
  } catch (e) {
    output = JSON.stringify({ errors: [{ severity: "error", type: "CompilerCrash", formattedMessage: String(e && e.message || e), message: String(e && e.message || e) }] });
  }
  process.stdout.write(JSON.stringify({ id: job.id, output: output }) + "\n");
});
rl.on("close", () => process.exit(0));
