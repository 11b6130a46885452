"""Every pipeline asset is partitioned by env × version: one release = one partition key.

`version` is dynamic: the tag sensor adds a tag's partition when it accepts the tag, so the UI
shows exactly the releases that happened, not a calendar.
"""

import dagster as dg

from deploy_assets.config import ENVS

VERSION_PARTITIONS_NAME = "version"

versions = dg.DynamicPartitionsDefinition(name=VERSION_PARTITIONS_NAME)

release_partitions = dg.MultiPartitionsDefinition(
    {"env": dg.StaticPartitionsDefinition(list(ENVS)), "version": versions}
)


def release_partition_key(env: str, tag: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"env": env, "version": tag})


from deploy_assets.names import split_partition_key  # noqa: E402,F401 (re-exported)
