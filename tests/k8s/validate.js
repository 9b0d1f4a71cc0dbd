// Validates Kubernetes manifests offline against the Kubernetes API's own
// schemas as the kubernetes-models package ships them compiled (types,
// required fields, enums, formats), and refuses fields those schemas do not
// know: a misspelt field passes the schemas as written (they allow unknown
// properties) and would be silently dropped by an API server.
//
//   node validate.js FILE.yaml...   prints one line per document; exit 0 if
//                                   every one is valid, 1 if not, 2 on misuse
// NODE_PATH must name the node_modules that scripts/deps.sh installed.
'use strict';
const fs = require('fs');
const YAML = require('yaml');

// apps/v1 -> kubernetes-models/apps/v1/KIND; v1 -> kubernetes-models/v1/KIND.
function modelOf(doc) {
  const av = String(doc.apiVersion || '');
  const kind = String(doc.kind || '');
  if (!av || !/^[A-Za-z0-9]+$/.test(kind)) return null;
  try {
    return require(`kubernetes-models/${av}/${kind}`)[kind] || null;
  } catch (e) {
    return null;
  }
}

function errorsOf(Model, doc) {
  try {
    new Model(doc).validate();
    return [];
  } catch (e) {
    if (!Array.isArray(e.errors)) throw e;
    return e.errors;
  }
}

const ptr = (k) => String(k).replace(/~/g, '~0').replace(/\//g, '~1');

// A field is known if the schema checks its value: a function is a value of
// no JSON type, so a known field given one must fail at its own path.
function unknownFields(Model, doc) {
  const unknown = [];
  const probe = () => 0;
  const walk = (node, path) => {
    if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, `${path}/${i}`));
      return;
    }
    if (node === null || typeof node !== 'object') return;
    for (const key of Object.keys(node)) {
      const here = `${path}/${ptr(key)}`;
      const saved = node[key];
      node[key] = probe;
      const flagged = errorsOf(Model, doc).some((e) => e.instancePath === here);
      node[key] = saved;
      if (!flagged) unknown.push(here);
      else walk(saved, here);
    }
  };
  walk(doc, '');
  return unknown;
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node validate.js FILE.yaml...');
  process.exit(2);
}
let bad = 0;
for (const file of files) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'));
  docs.forEach((d, n) => {
    const where = `${file} document ${n + 1}`;
    if (d.errors.length > 0) {
      console.log(`${where}: not YAML: ${d.errors[0].message}`);
      bad++;
      return;
    }
    const doc = d.toJS();
    if (doc === null || doc === undefined) return;  // an empty document
    const Model = modelOf(doc);
    if (!Model) {
      console.log(`${where}: no schema for apiVersion '${doc.apiVersion}' kind '${doc.kind}'`);
      bad++;
      return;
    }
    const errs = errorsOf(Model, doc)
      .map((e) => `${e.instancePath || '/'} ${e.message}`)
      .concat(unknownFields(Model, doc).map((p) => `${p} is not a field of ${doc.kind}`));
    if (errs.length > 0) {
      console.log(`${where} (${doc.kind} ${doc.metadata && doc.metadata.name}): ${errs.join('; ')}`);
      bad++;
    } else {
      console.log(`${where} (${doc.kind} ${doc.metadata && doc.metadata.name}): valid`);
    }
  });
}
process.exit(bad > 0 ? 1 : 0);
