#!/bin/sh
# Creates Custodian's roles and database. Runs once when the postgres volume is first initialised
# (docker-entrypoint-initdb.d), and is safe to run again, e.g. on a volume made before the service role
# existed:  docker compose exec postgres sh /docker-entrypoint-initdb.d/10-custodian.sh
#   custodian      owns the database and its tables; only `migrate` logs in as it
#   custodian_app  the service (api, worker): owns nothing; `migrate` grants it rows, and on the audit
#                  tables only SELECT and INSERT, so it can neither rewrite the chain nor drop its triggers
#   temporal       Temporal's own role; auto-setup creates its two databases (hence CREATEDB)
# Passwords come from the environment; nothing secret is written in this file.
set -e
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v owner_password="${CUSTODIAN_DB_PASSWORD:?CUSTODIAN_DB_PASSWORD is not set}" \
  -v app_password="${CUSTODIAN_APP_DB_PASSWORD:?CUSTODIAN_APP_DB_PASSWORD is not set}" \
  -v temporal_password="${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD is not set}" <<'SQL'
SELECT 'CREATE ROLE custodian LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'custodian') \gexec
ALTER ROLE custodian WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'owner_password';
SELECT 'CREATE ROLE custodian_app LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'custodian_app') \gexec
ALTER ROLE custodian_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'app_password';
SELECT 'CREATE DATABASE custodian OWNER custodian' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'custodian') \gexec
REVOKE ALL ON DATABASE custodian FROM PUBLIC;
SELECT 'CREATE ROLE temporal LOGIN CREATEDB' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'temporal') \gexec
ALTER ROLE temporal WITH LOGIN CREATEDB PASSWORD :'temporal_password';
SQL
