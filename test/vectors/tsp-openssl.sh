#!/usr/bin/env bash
# Makes test/vectors/tsp-openssl.json: RFC 3161 replies issued by `openssl ts -reply` (OpenSSL's TSA), for
# test/tsp/tsp.test.ts. Two TSAs under one root: EC P-256 with ESS signing-certificate-v2 (SHA-256), and RSA-2048
# with the SHA-1 ESS signing-certificate of RFC 2634. Run from the repository root: bash test/vectors/tsp-openssl.sh
set -euo pipefail
out=test/vectors/tsp-openssl.json
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
cd "$w"
cat > ca.cnf <<'CNF'
[req]
distinguished_name=dn
[dn]
[v3_ca]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
[v3_tsa]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=critical,timeStamping
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
[tsa]
default_tsa=ec
[ec]
serial=./serial
signer_digest=sha256
default_policy=1.2.3.4.1
digests=sha256,sha384,sha512
accuracy=secs:1,millisecs:500
ordering=no
tsa_name=yes
ess_cert_id_alg=sha256
[rsa]
serial=./serial
signer_digest=sha256
default_policy=1.2.3.4.2
digests=sha256
accuracy=secs:2
ordering=no
tsa_name=no
ess_cert_id_alg=sha1
CNF
echo 1000 > serial
openssl ecparam -name prime256v1 -genkey -noout -out root.key
openssl req -new -x509 -key root.key -subj "/CN=Interop TSA Root/O=openssl" -days 3650 -config ca.cnf -extensions v3_ca -out root.pem
openssl ecparam -name prime256v1 -genkey -noout -out ec.key
openssl req -new -key ec.key -subj "/CN=openssl EC TSA/O=openssl" -config ca.cnf -out ec.csr
openssl x509 -req -in ec.csr -CA root.pem -CAkey root.key -CAcreateserial -days 3000 -extfile ca.cnf -extensions v3_tsa -out ec.pem
openssl genrsa -out rsa.key 2048 2>/dev/null
openssl req -new -key rsa.key -subj "/CN=openssl RSA TSA/O=openssl" -config ca.cnf -out rsa.csr
openssl x509 -req -in rsa.csr -CA root.pem -CAkey root.key -CAcreateserial -days 3000 -extfile ca.cnf -extensions v3_tsa -out rsa.pem
printf 'keyframe record chain head' > data.txt
openssl ts -query -data data.txt -sha256 -cert -out ec.tsq
openssl ts -reply -queryfile ec.tsq -inkey ec.key -signer ec.pem -config ca.cnf -section ec -out ec.tsr 2>/dev/null
openssl ts -query -data data.txt -sha256 -no_nonce -out rsa.tsq
openssl ts -reply -queryfile rsa.tsq -inkey rsa.key -signer rsa.pem -chain root.pem -config ca.cnf -section rsa -out rsa.tsr 2>/dev/null
openssl ts -verify -in ec.tsr -queryfile ec.tsq -CAfile root.pem -untrusted ec.pem >/dev/null
openssl ts -verify -in rsa.tsr -data data.txt -CAfile root.pem -untrusted rsa.pem >/dev/null
field() { openssl ts -reply -in "$1" -text 2>/dev/null | sed -n "s/^$2: //p"; }
b64() { base64 -w0 "$1"; }
node - "$OLDPWD/$out" <<JS
const fs = require('node:fs');
const [out] = process.argv.slice(2);
const reply = (name) => ({
  request: fs.readFileSync('${w}/' + name + '.tsq').toString('base64'),
  reply: fs.readFileSync('${w}/' + name + '.tsr').toString('base64'),
});
const vec = {
  provenance: {
    made: new Date().toISOString(),
    by: \`\${require('node:child_process').execFileSync('openssl', ['version']).toString().trim()}, test/vectors/tsp-openssl.sh\`,
    commands: [
      'openssl ts -query -data data.txt -sha256 -cert -out ec.tsq',
      'openssl ts -reply -queryfile ec.tsq -inkey ec.key -signer ec.pem -config ca.cnf -section ec -out ec.tsr   (ess_cert_id_alg=sha256, accuracy 1.5 s, tsa_name=yes)',
      'openssl ts -query -data data.txt -sha256 -no_nonce -out rsa.tsq',
      'openssl ts -reply -queryfile rsa.tsq -inkey rsa.key -signer rsa.pem -chain root.pem -config ca.cnf -section rsa -out rsa.tsr   (ess_cert_id_alg=sha1, accuracy 2 s; no certificate requested, so the token carries none)',
      'both checked with openssl ts -verify -CAfile root.pem (-untrusted the TSA certificate) before writing',
    ],
  },
  data: fs.readFileSync('${w}/data.txt', 'utf8'),
  root: fs.readFileSync('${w}/root.pem', 'utf8'),
  ec: { certificate: fs.readFileSync('${w}/ec.pem', 'utf8'), ...reply('ec'), genTime: new Date('$(field ec.tsr 'Time stamp')').toISOString(), serial: '$(field ec.tsr 'Serial number')', nonce: '$(field ec.tsr 'Nonce')', policy: '1.2.3.4.1' },
  rsa: { certificate: fs.readFileSync('${w}/rsa.pem', 'utf8'), ...reply('rsa'), genTime: new Date('$(field rsa.tsr 'Time stamp')').toISOString(), serial: '$(field rsa.tsr 'Serial number')', policy: '1.2.3.4.2' },
};
fs.writeFileSync(out, JSON.stringify(vec, null, 2) + '\n');
JS
echo "wrote $out"
