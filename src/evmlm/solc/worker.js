// evmlm solc worker: one long-lived node process per solc-js version.
// Usage: node worker.js MODULE_DIR
// Reads newline-delimited JSON jobs {"id": N, "input": "<standard JSON input string>"} on stdin,
// writes one line {"id": N, "output": "<standard JSON output string>"} per job on stdout.
// All sources are supplied by the caller, so the import callback always answers "not found".
//
// solc runs in a worker thread so that the main thread stays free while a (synchronous)
// compile runs: when stdin closes or the parent process dies (SIGKILL), the process exits at
// once instead of lingering as an orphan until the compile ends.
"use strict";
const { Worker, isMainThread, parentPort, workerData } = require("worker_threads");

function compiler(moduleDir) {
  const solc = require(moduleDir);
  const version = solc.version();
  const m = /^(\d+)\.(\d+)\./.exec(version);
  const minor = m ? parseInt(m[2], 10) : 8;
  const major = m ? parseInt(m[1], 10) : 0;
  const findImports = (path) => ({
    error: "File not found (evmlm supplies every source; check remappings): " + path,
  });
  const compile = (input) => {
    if (major === 0 && minor <= 4) return solc.compileStandardWrapper(input, findImports);
    if (major === 0 && minor === 5) return solc.compile(input, findImports);
    return solc.compile(input, { import: findImports });
  };
  return { version, compile };
}

if (isMainThread) {
  const readline = require("readline");
  const worker = new Worker(__filename, {
    workerData: process.argv[2],
    resourceLimits: { maxOldGenerationSizeMb: 4096 },
  });
  worker.on("message", (msg) => process.stdout.write(msg + "\n"));
  worker.on("error", (e) => {
    process.stderr.write(String(e && e.stack || e) + "\n");
    process.exit(1);
  });
  worker.on("exit", (code) => process.exit(code || 1));
  const rl = readline.createInterface({
    input: process.stdin, crlfDelay: Infinity, terminal: false,
  });
  rl.on("line", (line) => { if (line.trim()) worker.postMessage(line); });
  rl.on("close", () => process.exit(0));
  // Re-parented (the parent died while another process still holds our stdin): exit too.
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 500).unref();
} else {
  const { version, compile } = compiler(workerData);
  parentPort.postMessage(JSON.stringify({ ready: true, version: version }));
  parentPort.on("message", (line) => {
    let job;
    try {
      job = JSON.parse(line);
    } catch (e) {
      parentPort.postMessage(JSON.stringify({ id: null, fatal: "bad job line: " + e.message }));
      return;
    }
    let output;
    try {
      output = compile(job.input);
    } catch (e) {
      const message = String(e && e.message || e);
      const error = {
        severity: "error", type: "CompilerCrash", formattedMessage: message, message,
      };
      output = JSON.stringify({ errors: [error] });
    }
    parentPort.postMessage(JSON.stringify({ id: job.id, output: output }));
  });
}
