# Custodian: one image for every role (api, worker, migrate, create-api-key, verify-audit).
# TypeScript runs directly through tsx, a runtime dependency, so there is no build step.
FROM node:20-bookworm-slim

ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    HOST=0.0.0.0 \
    PORT=3000 \
    CUSTODIAN_DATA_DIR=/var/lib/custodian

WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

# Every top-level source folder cli/main.ts reaches. Files stay root-owned: the app cannot rewrite its own code.
COPY tsconfig.json ./
COPY activities ./activities
COPY api ./api
COPY bin ./bin
COPY cli ./cli
COPY db ./db
COPY domain ./domain
COPY runtime ./runtime
COPY workflows ./workflows

# The data directory (backup storage by default) is the only writable path; a named volume mounted here
# inherits this ownership on first use.
RUN mkdir -p "$CUSTODIAN_DATA_DIR" && chown node:node "$CUSTODIAN_DATA_DIR"

# The official image's unprivileged user (uid 1000).
USER node

EXPOSE 3000
ENTRYPOINT ["node", "--import", "tsx", "cli/main.ts"]
CMD ["api"]
