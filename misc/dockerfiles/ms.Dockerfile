# Microservice image: the static Go binary alone, nothing else (no shell, no libc).
# The build context holds exactly one file, `service`, the binary built for the target platform.
# No ARG/RUN steps: with the classic builder they create an intermediate container of the host
# platform, which breaks cross-platform (linux/arm64) builds on an amd64 engine.
FROM scratch
COPY service /service
EXPOSE 8080
ENTRYPOINT ["/service"]
