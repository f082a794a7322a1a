# MariaDB with TLS (sourced by .ci/run), so the MariaDB TLS tests see a real
# encrypted session. Idempotent:
# - makes, once, a CA, a server certificate signed by it (SAN 127.0.0.1 and
#   localhost) and a second, unrelated CA (the "wrong CA" the tests expect to
#   be refused), with openssl, in $DAF_CI_MARIADB_TLS_DIR
#   (default /var/lib/daf-ci/mariadb-tls);
# - writes /etc/mysql/mariadb.conf.d/90-daf-ci-tls.cnf (ssl_ca, ssl_cert,
#   ssl_key and local_infile=1, which a restart would otherwise lose) and
#   makes /etc/mysql/my.cnf include that folder if it does not;
# - restarts the server only when it does not already use these files
#   (ssl_* are read-only variables: `FLUSH SSL` reloads the files a server was
#   started with but cannot turn TLS on), or runs `FLUSH SSL` when the files
#   were remade under the same names; waits until it answers with
#   have_ssl=YES.
# Exports what the tests read:
#   DAF_TEST_MYSQL_TLS_CA        the CA that signed the server certificate
#   DAF_TEST_MYSQL_TLS_WRONG_CA  a CA that did not
# Also usable by hand: `ci_cleanup() { :; }; source .ci/setup/10-mariadb-tls.sh`.
tls_dir="${DAF_CI_MARIADB_TLS_DIR:-/var/lib/daf-ci/mariadb-tls}"
tls_cnf_dir=/etc/mysql/mariadb.conf.d
tls_cnf="$tls_cnf_dir/90-daf-ci-tls.cnf"
tls_my() { mysql --protocol=tcp -h 127.0.0.1 -P 3306 -u root -N -B "$@"; }
tls_remade=0
if ! { [ -s "$tls_dir/ca.pem" ] && [ -s "$tls_dir/server-key.pem" ] && [ -s "$tls_dir/wrong-ca.pem" ] \
       && openssl verify -CAfile "$tls_dir/ca.pem" "$tls_dir/server-cert.pem" >/dev/null 2>&1 \
       && openssl x509 -checkend 86400 -noout -in "$tls_dir/server-cert.pem" >/dev/null 2>&1; }; then
  echo "making a CA and a MariaDB server certificate in $tls_dir"
  mkdir -p "$tls_dir"
  chmod 0755 "$tls_dir"
  (
    set -e
    cd "$tls_dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=daf CI test CA" \
      -keyout ca-key.pem -out ca.pem 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=daf CI unrelated CA" \
      -keyout wrong-ca-key.pem -out wrong-ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout server-key.pem -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
      -days 3650 -extfile server.ext -out server-cert.pem 2>/dev/null
    rm -f server.csr server.ext ca.srl
    chmod 0644 ca.pem wrong-ca.pem server-cert.pem
    chmod 0600 ca-key.pem wrong-ca-key.pem server-key.pem
    # mariadbd runs as `mysql` and reads its key after dropping root.
    if id mysql >/dev/null 2>&1; then chown mysql server-key.pem; fi
  ) || { echo "openssl could not make the MariaDB test certificates"; return 1; }
  tls_remade=1
fi
mkdir -p "$tls_cnf_dir"
tls_want="[mariadbd]
ssl_ca = $tls_dir/ca.pem
ssl_cert = $tls_dir/server-cert.pem
ssl_key = $tls_dir/server-key.pem
local_infile = 1"
if [ "$(cat "$tls_cnf" 2>/dev/null)" != "$tls_want" ]; then
  printf '%s\n' "$tls_want" >"$tls_cnf"
fi
# Debian's stock my.cnf includes mariadb.conf.d; a hand-written one may not.
if ! /usr/sbin/mariadbd --print-defaults 2>/dev/null | grep -q -- "--ssl_cert=$tls_dir/server-cert.pem"; then
  printf '\n!includedir %s/\n' "$tls_cnf_dir" >>/etc/mysql/my.cnf
fi
tls_state="$(tls_my -e "SELECT CONCAT(@@have_ssl, ' ', @@ssl_ca)" 2>/dev/null || true)"
if [ "$tls_state" != "YES $tls_dir/ca.pem" ]; then
  echo "restarting MariaDB with TLS (was: ${tls_state:-not answering})"
  mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -u root shutdown 2>/dev/null || true
  for i in $(seq 1 300); do
    pgrep -x mariadbd >/dev/null || break
    sleep 0.2
  done
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
elif [ "$tls_remade" = 1 ]; then
  tls_my -e "FLUSH SSL"
fi
for i in $(seq 1 150); do
  mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1 && break
  sleep 0.2
done
tls_state="$(tls_my -e "SELECT CONCAT(@@have_ssl, ' ', @@ssl_ca)" 2>/dev/null || true)"
if [ "$tls_state" != "YES $tls_dir/ca.pem" ]; then
  echo "MariaDB did not come back with TLS (have_ssl, ssl_ca: ${tls_state:-not answering})"
  tail -n 20 /var/log/mysql/error.log 2>/dev/null || true
  return 1
fi
tls_my -e "SET GLOBAL local_infile = 1"
echo "MariaDB TLS: $(tls_my -e "SELECT @@version, @@have_ssl")"
export DAF_TEST_MYSQL_TLS_CA="$tls_dir/ca.pem"
export DAF_TEST_MYSQL_TLS_WRONG_CA="$tls_dir/wrong-ca.pem"
