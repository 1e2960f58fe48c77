# PostgreSQL 15 with q3c. The official image already has the PGDG apt repository configured, which
# carries postgresql-15-q3c. Build context: containers/ (docker-compose.yml). The init script in
# db/ runs once, on the first start with an empty data volume.
FROM postgres:15-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends "postgresql-${PG_MAJOR}-q3c" \
    && rm -rf /var/lib/apt/lists/*

COPY --chmod=755 db/ /docker-entrypoint-initdb.d/
