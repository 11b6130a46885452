"""The local stack (registry, S3 API, git remotes, Docker engine) and the local Dagster
instance: for `make demo`, `make dev` and the tests, never imported by the code location."""
