// Applies wasm-opt's `--minify-imports-and-exports-and-modules` renaming to the
// wasm-bindgen glue, so that the module and the glue agree again.
//
// wasm-bindgen names every import after its JS function plus a hash
// (`__wbg_querySelector_6c1bd81d448fb480`) and every closure shim export after a hash
// too; each name is in the module and again in the glue, and the hashes do not
// compress. wasm-opt renames them to one or two characters and prints the mapping;
// this script rewrites the glue's import object keys, its import module name and its
// `wasm.<export>` uses to match, then checks the result against the renamed module.
//
// Usage: node rename-bindings.mjs MAPPING.json RENAMED.wasm GLUE.js   (GLUE.js in place)
import { readFileSync, writeFileSync } from "node:fs";

const [mappingPath, wasmPath, gluePath] = process.argv.slice(2);
const mapping = JSON.parse(readFileSync(mappingPath, "utf8"));
const renamed = new WebAssembly.Module(readFileSync(wasmPath));
let glue = readFileSync(gluePath, "utf8");

function fail(message) {
  console.error(`rename-bindings: ${message}`);
  process.exit(1);
}

/** Replaces every match of `pattern` with `replacement`; `what` must be in the glue. */
function replace(pattern, replacement, what) {
  let found = false;
  glue = glue.replace(pattern, () => {
    found = true;
    return replacement;
  });
  if (!found) fail(`${what} not found in the glue`);
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

// The import object: one key per imported function, under one module name.
const modules = new Set(WebAssembly.Module.imports(renamed).map((i) => i.module));
if (modules.size !== 1) fail(`expected one import module, found ${[...modules].join(", ")}`);
const [newModule] = modules;
const oldModules = new Set(mapping.imports.map(([module]) => module));
for (const oldModule of oldModules) {
  replace(new RegExp(`(["'])${escape(oldModule)}\\1(?=\\s*:)`, "g"), JSON.stringify(newModule), `module ${oldModule}`);
}
for (const [, oldName, newName] of mapping.imports) {
  replace(new RegExp(`(?<![\\w$])${escape(oldName)}(?=\\s*:)`, "g"), JSON.stringify(newName), `import ${oldName}`);
}
// The exports the glue calls, all as `wasm.<name>`.
const exportNames = new Map(mapping.exports.map(([oldName, newName]) => [oldName, newName]));
glue = glue.replace(/\bwasm\.([\w$]+)/g, (whole, name) => {
  const newName = exportNames.get(name);
  if (newName === undefined) fail(`the glue uses wasm.${name}, which the module does not export`);
  return `wasm[${JSON.stringify(newName)}]`;
});

// Every import of the renamed module must now be a key of the glue's import object.
for (const { name } of WebAssembly.Module.imports(renamed)) {
  if (!glue.includes(`${JSON.stringify(name)}:`)) fail(`import ${name} missing from the glue`);
}
writeFileSync(gluePath, glue);
