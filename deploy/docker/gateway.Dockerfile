# syntax=docker/dockerfile:1
# The API gateway: the official Caddy image with deploy/gateway/Caddyfile, run unprivileged.
#
#   docker build -f deploy/docker/gateway.Dockerfile -t coursemesh/gateway .
#
# Configure with the Caddyfile's variables: CATALOG_UPSTREAMS, COMMERCE_UPSTREAMS,
# LEARNING_UPSTREAMS, CUSTOMGEN_UPSTREAMS (space-separated host:port lists), GATEWAY_PORT,
# JWKS_DIR (development issuer only), GATEWAY_UPSTREAM_TIMEOUT, GATEWAY_LB_TRY_DURATION,
# GATEWAY_LOG_LEVEL. Build context: the repository root.

ARG CADDY_VERSION=2.11

FROM caddy:${CADDY_VERSION}-alpine
COPY deploy/gateway/Caddyfile /etc/caddy/Caddyfile
# The API contract (/openapi.json) and its reference page (/docs).
COPY docs/openapi.json deploy/gateway/docs.html /srv/gateway/
ENV GATEWAY_BIND=0.0.0.0 \
    GATEWAY_PORT=8080 \
    XDG_CONFIG_HOME=/config \
    XDG_DATA_HOME=/data
# Fail the build on a Caddyfile that does not adapt (placeholder upstreams just for the check).
RUN CATALOG_UPSTREAMS=catalog:8000 COMMERCE_UPSTREAMS=commerce:8000 \
    LEARNING_UPSTREAMS=learning:8000 CUSTOMGEN_UPSTREAMS=custom-gen:8000 \
    caddy validate --config /etc/caddy/Caddyfile --adapter caddyfile \
 && chown -R 65532:65532 /config /data
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["sh", "-c", "wget -q -O /dev/null http://127.0.0.1:${GATEWAY_PORT}/health/gateway"]
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
