# Run inside the worker image (buildah run): the worker serves, `htsprep-worker healthcheck`
# (the image's HEALTHCHECK and the task definition's) passes against it, SIGTERM drains it.
set -u
htsprep-worker serve > /tmp/serve.log 2>&1 &
pid=$!
for _ in $(seq 50); do htsprep-worker healthcheck 2>/dev/null && break; sleep 0.2; done
htsprep-worker healthcheck; echo "healthcheck rc=$?"
kill -TERM "$pid"; wait "$pid"; echo "serve rc=$?"
