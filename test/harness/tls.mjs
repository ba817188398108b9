// Throwaway certificates for TLS upstream tests, made with the openssl command: a test CA, a
// server certificate for `localhost` signed by it, and a second self-signed `localhost`
// certificate that the test CA did not sign.

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

const kServerExtensions = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=serverAuth',
  'subjectAltName=DNS:localhost',
  '',
].join('\n');

// Writes the files into `dir` and returns {caFile, key, cert, rogueKey, rogueCert} where the
// key and certificate values are PEM strings and caFile is the path of the test CA.
export function makeTestCertificates(dir) {
  const curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

  openssl(['req', '-x509', ...curve, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
    '-subj', '/CN=Keystore Test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);

  writeFileSync(path.join(dir, 'server.ext'), kServerExtensions);
  openssl(['req', '-new', ...curve, '-keyout', 'server.key', '-out', 'server.csr',
    '-subj', '/CN=localhost'], dir);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
    '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext'], dir);

  openssl(['req', '-x509', ...curve, '-keyout', 'rogue.key', '-out', 'rogue.pem', '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], dir);

  const read = (name) => readFileSync(path.join(dir, name), 'utf8');
  return {
    caFile: path.join(dir, 'ca.pem'),
    key: read('server.key'),
    cert: read('server.pem'),
    rogueKey: read('rogue.key'),
    rogueCert: read('rogue.pem'),
  };
}
