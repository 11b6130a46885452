"""Tables a person reads: a release's rows and the envs' status, as the CLI and the demo print them."""

from __future__ import annotations

from dataclasses import asdict

from deploy_assets.records.release_rows import ServiceRow


def format_table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns}
    lines = [
        "  ".join(c.ljust(widths[c]) for c in columns),
        "  ".join("-" * widths[c] for c in columns),
    ]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def format_release(rows: list[ServiceRow]) -> str:
    data = [asdict(r) | {"sha256": r.sha256[:16] + "…" if r.sha256 else ""} for r in rows]
    return format_table(
        data,
        ["service", "kind", "sha256", "image", "s3_key", "gitops_commit", "reused_from", "checks"],
    )


def format_status(doc: dict) -> str:
    rows = []
    for env, info in doc.items():
        if info.get("error"):
            rows.append({"env": env, "project": "-", "version": "?", "via": info["error"]})
        for project, row in info["projects"].items():
            rows.append(
                {
                    "env": env,
                    "project": project,
                    "version": row["version"] or "-",
                    "since": row["since"],
                    "run": row["run_id"] or "-",
                    "via": row["via"],
                }
            )
        if not info["projects"] and not info.get("error"):
            rows.append(
                {"env": env, "project": "-", "version": "nothing deployed", "via": info["repo"]}
            )
    return format_table(rows, ["env", "project", "version", "since", "run", "via"])
