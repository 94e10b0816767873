#!/bin/sh
# Makes the test-only TLS files in this folder (never use them outside tests: the keys
# are public). A CA, a server certificate for localhost / 127.0.0.1 and a client
# certificate for mutual TLS, all signed by the CA and valid for 100 years.
# Run from this folder: sh make_test_certs.sh
set -eu
days=36500
openssl req -x509 -newkey rsa:2048 -nodes -days "$days" -subj "/CN=sf-test-ca" \
  -keyout ca.key -out ca.pem
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days "$days" \
  -extfile server.ext -out server.pem
openssl req -newkey rsa:2048 -nodes -subj "/CN=sf-test-worker" -keyout client.key -out client.csr
printf 'extendedKeyUsage=clientAuth\n' > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days "$days" \
  -extfile client.ext -out client.pem
rm -f server.csr client.csr server.ext client.ext ca.srl
