// Compile one standard-JSON input (stdin) with an aliased solc-js (argv[2], e.g. solc0826).
// Imports are resolved under the directories given in argv[3..]. Prints standard-JSON output.
const fs = require('fs');
const path = require('path');
const solc = require(process.argv[2]);
const roots = process.argv.slice(3);
function findImports(p) {
  for (const r of roots) {  // "prefix=dir" or "dir"
    const [pre, dir] = r.includes('=') ? r.split('=') : ['', r];
    if (!p.startsWith(pre)) continue;
    const f = path.join(dir, p.slice(pre.length));
    if (fs.existsSync(f)) return { contents: fs.readFileSync(f, 'utf8') };
  }
  return { error: 'not found: ' + p };
}
const input = fs.readFileSync(0, 'utf8');
const v = solc.version();
let out;
if (v.startsWith('0.4.')) out = solc.compileStandardWrapper(input, findImports);
else if (v.startsWith('0.5.')) out = solc.compile(input, findImports);
else out = solc.compile(input, { import: findImports });
process.stdout.write(out);
