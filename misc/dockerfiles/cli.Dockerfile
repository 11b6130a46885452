# CLI image: the static Go binary as entrypoint. The build context holds exactly one file,
# `service`, the binary built for the target platform. No ARG/RUN steps (see ms.Dockerfile).
FROM scratch
COPY service /cli
ENTRYPOINT ["/cli"]
