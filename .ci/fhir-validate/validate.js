// Validates FHIR R4 JSON files with an independent validator (npm "fhir",
// pinned by .ci/run), failing on any error. Usage: node validate.js FILE...
'use strict';
const fs = require('fs');
const { Fhir } = require('fhir');

const fhir = new Fhir();
let invalid = 0;
const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('validate.js: no files given');
  process.exit(2);
}
for (const file of files) {
  const resource = JSON.parse(fs.readFileSync(file, 'utf8'));
  const result = fhir.validate(resource, { errorOnUnexpected: true });
  const errors = result.messages.filter((m) => m.severity === 'error');
  if (!result.valid || errors.length > 0) {
    invalid++;
    console.log(`INVALID ${file}`);
    for (const m of errors) console.log(`  ${m.location}: ${m.message}`);
  } else {
    console.log(`valid   ${file}`);
  }
}
console.log(`${files.length - invalid} passed, ${invalid} failed`);
process.exit(invalid > 0 ? 1 : 0);
