"""What the instance and the env repos say happened: history, lineage, status, rollback
planning. Reads and plans only; printing is the CLI's (deploy_assets.cli)."""
