#!/bin/sh
# Run by the nginx image's entrypoint just before nginx starts: reload nginx every
# VETTER_NGINX_RELOAD_INTERVAL (default 6h), in the background. certbot renews certificates in
# place (it tries twice a day, 30 days before they expire) but cannot signal this container; a
# reload is graceful and picks up the renewed files. It also re-resolves the app containers after
# `docker compose up --scale app=N`.
interval=${VETTER_NGINX_RELOAD_INTERVAL:-6h}
echo "vetter: reloading nginx every $interval"
(
    while :; do
        sleep "$interval"
        nginx -s reload || echo "vetter: nginx -s reload failed; the running configuration stays"
    done
) </dev/null &
