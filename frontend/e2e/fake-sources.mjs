// A local stand-in for the outside services connectors read, so the e2e suite never reaches the
// internet: the npm downloads API (`/npm-downloads/downloads/range/{start}:{end}/{package}`) and
// the npm registry (`/npm-registry/{package}`) answer for the packages in PACKAGES; everything
// else (other packages, PyPI, GitHub) answers 404 like an unknown package. Listens on a free
// port of 127.0.0.1 and prints its base URL on the first line of stdout. `GET /__hits` lists the
// paths requested so far (JSON), for the suite to check what the server fetched.
import { createServer } from 'node:http';

const PACKAGES = new Map([
  ['acme-cli', { latest: '1.4.0', maintainers: ['olive'], perDay: 120 }],
  ['@acme/sdk', { latest: '0.9.1', maintainers: ['olive', 'bob'], perDay: 40 }],
]);
const hits = [];

function days(start, end, perDay) {
  const out = [];
  for (let d = new Date(`${start}T00:00:00Z`); d <= new Date(`${end}T00:00:00Z`); d.setUTCDate(d.getUTCDate() + 1)) {
    out.push({ day: d.toISOString().slice(0, 10), downloads: perDay + (d.getUTCDate() % 7) });
  }
  return out;
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  if (path === '/__hits') return json(res, 200, hits);
  hits.push(path);
  let m = path.match(/^\/npm-downloads\/downloads\/range\/(\d{4}-\d{2}-\d{2}):(\d{4}-\d{2}-\d{2})\/(.+)$/);
  if (m) {
    const pkg = PACKAGES.get(m[3]);
    if (!pkg) return json(res, 404, { error: `package ${m[3]} not found` });
    return json(res, 200, { start: m[1], end: m[2], package: m[3], downloads: days(m[1], m[2], pkg.perDay) });
  }
  m = path.match(/^\/npm-registry\/(.+)$/);
  if (m) {
    const pkg = PACKAGES.get(m[1]);
    if (!pkg) return json(res, 404, { error: 'Not found' });
    return json(res, 200, {
      name: m[1],
      'dist-tags': { latest: pkg.latest },
      maintainers: pkg.maintainers.map((name) => ({ name, email: `${name}@acme.io` })),
    });
  }
  return json(res, 404, { message: 'Not Found' });
});
server.listen(0, '127.0.0.1', () => console.log(`http://127.0.0.1:${server.address().port}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
