#!/usr/bin/env node
// Compiles every contract under src/ with the pinned solc (solc-js) and OpenZeppelin into
// artifacts/<Name>.json (ABI + bytecode), which are committed so Python needs no compiler.
//   node build.js          write artifacts/
//   node build.js --check  exit 1 if artifacts/ differ from a fresh compile (CI)
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const SRC = path.join(__dirname, "src");
const OUT = path.join(__dirname, "artifacts");
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

function listSources(dir, rel = "") {
  return fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name)).flatMap((e) => {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) return listSources(path.join(dir, e.name), r);
    return e.name.endsWith(".sol") ? [r] : [];
  });
}

function findImport(importPath) {
  const candidates = [path.join(__dirname, "node_modules", importPath), path.join(SRC, importPath)];
  for (const c of candidates) {
    if (fs.existsSync(c)) return { contents: fs.readFileSync(c, "utf8") };
  }
  return { error: `not found: ${importPath}` };
}

function compile() {
  const sources = {};
  for (const rel of listSources(SRC)) sources[rel] = { content: fs.readFileSync(path.join(SRC, rel), "utf8") };
  const input = { language: "Solidity", sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  for (const e of output.errors || []) process.stderr.write(e.formattedMessage + "\n");
  if (errors.length) process.exit(2);
  const artifacts = {};
  for (const [source, contracts] of Object.entries(output.contracts)) {
    if (source.startsWith("@openzeppelin/")) continue;
    for (const [name, c] of Object.entries(contracts)) {
      if (!c.evm.bytecode.object || c.abi.length === 0) continue; // interfaces, abstract contracts, internal libraries
      artifacts[name] = {
        contractName: name,
        sourceName: source,
        compiler: { name: "solc", version: solc.version(), settings: { optimizer: SETTINGS.optimizer, evmVersion: SETTINGS.evmVersion } },
        abi: c.abi,
        bytecode: "0x" + c.evm.bytecode.object,
        deployedBytecode: "0x" + c.evm.deployedBytecode.object,
      };
    }
  }
  return artifacts;
}

function render(a) {
  return JSON.stringify(a, null, 2) + "\n";
}

const artifacts = compile();
if (process.argv.includes("--check")) {
  let stale = 0;
  const expected = new Set(Object.keys(artifacts).map((n) => `${n}.json`));
  for (const [name, a] of Object.entries(artifacts)) {
    const file = path.join(OUT, `${name}.json`);
    if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== render(a)) {
      process.stderr.write(`stale artifact: ${name}.json (run: npm --prefix contracts run build)\n`);
      stale++;
    }
  }
  for (const f of fs.existsSync(OUT) ? fs.readdirSync(OUT) : []) {
    if (f.endsWith(".json") && !expected.has(f)) {
      process.stderr.write(`artifact without source: ${f}\n`);
      stale++;
    }
  }
  if (stale) process.exit(1);
  console.log(`artifacts match sources (${Object.keys(artifacts).length} contracts, solc ${solc.version()})`);
} else {
  fs.mkdirSync(OUT, { recursive: true });
  for (const [name, a] of Object.entries(artifacts)) fs.writeFileSync(path.join(OUT, `${name}.json`), render(a));
  console.log(`wrote ${Object.keys(artifacts).length} artifacts with solc ${solc.version()}`);
}
