#!/bin/sh
# Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d).
# Creates the application role and database, and Temporal's own role, which auto-setup uses
# to create its `temporal` and `temporal_visibility` databases (hence CREATEDB).
# Passwords come from the environment; nothing secret is written in this file.
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v app_password="${CUSTODIAN_DB_PASSWORD:?CUSTODIAN_DB_PASSWORD is not set}" \
  -v temporal_password="${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD is not set}" <<'SQL'
CREATE ROLE custodian LOGIN PASSWORD :'app_password';
CREATE DATABASE custodian OWNER custodian;
REVOKE ALL ON DATABASE custodian FROM PUBLIC;
CREATE ROLE temporal LOGIN CREATEDB PASSWORD :'temporal_password';
SQL
