// Renders kustomizations with `kubectl kustomize` and validates every object against the
// Kubernetes and Prometheus Operator schemas that the kubernetes-models packages carry, offline.
//
//   node validate.mjs DIR[+COMPONENT...] ...
//
// DIR+COMPONENT renders DIR with extra kustomize components added (e.g. the ServiceMonitor one,
// which the example overlay leaves out). Prints one line per object and "N passed, N failed".

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { parseAllDocuments } from "yaml";

// The module that holds the model of an apiVersion/kind, or undefined for kinds we do not know.
function modelModule(apiVersion, kind) {
  if (!/^[A-Za-z]+$/.test(kind)) return undefined;
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "monitoring.coreos.com") {
    return `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`;
  }
  return group === "" ? `kubernetes-models/${version}/${kind}`
                      : `kubernetes-models/${group}/${version}/${kind}`;
}

function render(spec) {
  const [dir, ...components] = spec.split("+").map((p) => resolve(p));
  if (components.length === 0) return execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8" });
  const scratch = mkdtempSync(join(tmpdir(), "pgtally-kustomize-"));
  try {
    writeFileSync(join(scratch, "kustomization.yaml"), [
      "apiVersion: kustomize.config.k8s.io/v1beta1",
      "kind: Kustomization",
      // kustomize takes relative paths only.
      `resources: [${JSON.stringify(relative(scratch, dir))}]`,
      `components: [${components.map((c) => JSON.stringify(relative(scratch, c))).join(", ")}]`,
      "",
    ].join("\n"));
    return execFileSync("kubectl", ["kustomize", scratch], { encoding: "utf8" });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

let passed = 0;
let failed = 0;
const specs = process.argv.slice(2);
if (specs.length === 0) {
  console.error("usage: node validate.mjs DIR[+COMPONENT...] ...");
  process.exit(2);
}
for (const spec of specs) {
  const documents = parseAllDocuments(render(spec));
  for (const document of documents) {
    if (document.errors.length > 0) throw new Error(`${spec}: ${document.errors[0].message}`);
    const object = document.toJS();
    if (object === null) continue;
    const name = `${spec}: ${object.kind}/${object.metadata?.name}`;
    const path = modelModule(object.apiVersion ?? "", object.kind ?? "");
    let problem;
    try {
      if (!path) throw new Error(`no schema for apiVersion ${object.apiVersion} kind ${object.kind}`);
      const module = await import(path).catch(() => undefined);
      const Model = module?.[object.kind];
      if (!Model) throw new Error(`no schema for ${object.apiVersion} ${object.kind}`);
      new Model(object).validate();
    } catch (error) {
      problem = error.message;
    }
    if (problem) {
      failed++;
      console.log(`FAIL ${name}: ${problem}`);
    } else {
      passed++;
      console.log(`ok   ${name}`);
    }
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
