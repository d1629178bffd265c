# FlyTrap proxy image. The same image also runs the bundled anvil (see compose.yaml).
#   docker build -t flytrap .
#   docker run --rm -p 1883:1883 -e FLYTRAP_RPC=… -e FLYTRAP_CONTRACT=… flytrap proxy start --listen 0.0.0.0:1883 --broker mqtt://broker:1883

FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Scripts stay off, as in package.json's allowScripts: every native piece ships prebuilt.
RUN npm ci --ignore-scripts
COPY tsconfig.json oclif.manifest.json ./
COPY bin ./bin
COPY contracts ./contracts
COPY scripts ./scripts
COPY src ./src
RUN npm run build && npm run manifest && npm prune --omit=dev --ignore-scripts

FROM node:20-slim
ENV NODE_ENV=production \
    FLYTRAP_HOME=/home/node/.flytrap
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json /app/oclif.manifest.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/bin ./bin
COPY --from=build /app/dist ./dist
COPY --from=build /app/contracts ./contracts
USER node
# 1883 MQTT, 8883 MQTT over TLS (--tls-listen), 9464 Prometheus (--metrics)
EXPOSE 1883 8883 9464
ENTRYPOINT ["node", "bin/run.js"]
CMD ["proxy", "start", "--listen", "0.0.0.0:1883"]
