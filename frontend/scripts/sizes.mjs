// Prints the gzip size of every built JavaScript file, and of what the dashboard's first load
// fetches (the entry script and the chunks index.html preloads), and fails above the budget.
import { readFileSync, readdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';

const BUDGET = 300 * 1024;
const dist = new URL('../dist/', import.meta.url).pathname;
const gz = (file) => gzipSync(readFileSync(join(dist, file))).length;
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const files = readdirSync(join(dist, 'assets')).filter((f) => f.endsWith('.js'));
for (const f of files.sort()) console.log(`  ${kb(gz(`assets/${f}`)).padStart(10)}  assets/${f}`);
const html = readFileSync(join(dist, 'index.html'), 'utf8');
const first = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.js)"/g)].map((m) => m[1]);
const total = first.reduce((sum, f) => sum + gz(f), 0);
console.log(`first load: ${first.length} scripts, ${kb(total)} gzip (budget ${kb(BUDGET)})`);
if (total > BUDGET) {
  console.error('first load is over budget');
  process.exit(1);
}
