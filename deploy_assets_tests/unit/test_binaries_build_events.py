"""`go build -json -v` read line by line: packages compiled, errors per package, progress lines.

The lines are recorded from go1.24.11 building misc/example-monorepo (cold GOCACHE, then with
a compile error in a shared package, then with an import no module provides)."""

import json

import pytest

from deploy_assets.resources.go_build_events import (
    BuildEvents,
    BuildProgress,
    closure_size,
    due,
    final_line,
    progress_line,
    without_json,
)

M = "example.com/monorepo"
COLD = [
    '{"ImportPath":"internal/goarch","Action":"build-output","Output":"internal/goarch\\n"}',
    '{"ImportPath":"internal/cpu","Action":"build-output","Output":"internal/cpu\\n"}',
    '{"ImportPath":"runtime","Action":"build-output","Output":"runtime\\n"}',
    f'{{"ImportPath":"{M}/internal/config","Action":"build-output","Output":"{M}/internal/config\\n"}}',
    f'{{"ImportPath":"{M}/cmd/ms/ms_chat","Action":"build-output","Output":"{M}/cmd/ms/ms_chat\\n"}}',
]
COMPILE_ERROR = [
    f'{{"ImportPath":"{M}/internal/config","Action":"build-output","Output":"{M}/internal/config\\n"}}',
    f'{{"ImportPath":"{M}/internal/config","Action":"build-output","Output":"# {M}/internal/config\\n"}}',
    f'{{"ImportPath":"{M}/internal/config","Action":"build-output",'
    '"Output":"internal/config/config.go:50:17: undefined: undefined_x\\n"}',
    f'{{"ImportPath":"{M}/internal/config","Action":"build-fail"}}',
]
MISSING = (
    "cmd/ms/ms_chat/bad.go:2:8: cannot find module providing package "
    f"{M}/internal/nonexist: module lookup disabled by GOPROXY=off"
)
MISSING_IMPORT = [
    json.dumps(
        {"ImportPath": f"{M}/internal/nonexist", "Action": "build-output", "Output": MISSING + "\n"}
    ),
    json.dumps({"ImportPath": f"{M}/internal/nonexist", "Action": "build-fail"}),
]


def test_each_compile_start_counts_once_and_reaches_the_callback_in_order():
    seen = []
    events = BuildEvents(on_compile=seen.append)
    for line in COLD + COLD[:2]:  # a repeated event does not count twice
        events.feed(line + "\n")
    assert (
        seen
        == events.compiled
        == [
            "internal/goarch",
            "internal/cpu",
            "runtime",
            f"{M}/internal/config",
            f"{M}/cmd/ms/ms_chat",
        ]
    )
    assert events.errors() == ("", {})  # a successful build: no output besides the -v lines


def test_a_compile_error_keeps_go_s_text_and_names_the_failing_package():
    events = BuildEvents()
    for line in COMPILE_ERROR:
        events.feed(line + "\n")
    message, by_package = events.errors()
    # The text a plain `go build` prints on stderr, header included; per package without it.
    assert (
        message == f"# {M}/internal/config\ninternal/config/config.go:50:17: undefined: undefined_x"
    )
    assert by_package == {
        f"{M}/internal/config": "internal/config/config.go:50:17: undefined: undefined_x"
    }
    assert events.failed == [f"{M}/internal/config"]
    assert events.compiled == [f"{M}/internal/config"]


def test_an_early_error_on_stderr_and_text_outside_the_events_are_kept():
    events = BuildEvents()
    for line in MISSING_IMPORT:
        events.feed(line + "\n")
    events.feed("not json: go printed this itself\n")
    message, by_package = events.errors("go: finding module for package x\n")
    assert message == (
        "go: finding module for package x\n" + MISSING + "\nnot json: go printed this itself"
    )
    assert by_package == {
        "?": "go: finding module for package x",
        f"{M}/internal/nonexist": MISSING,
    }


def test_a_failure_without_output_still_names_the_package():
    events = BuildEvents()
    events.feed('{"ImportPath":"example.com/x","Action":"build-fail"}\n')
    assert events.errors()[1] == {"example.com/x": "build failed (go printed no message)"}


def test_the_total_is_the_closure_of_the_mains_without_unsafe():
    deps = {"a/main": ("a/lib", "fmt", "unsafe"), "b/main": ("a/lib", "os", "unsafe")}
    assert closure_size(["a/main", "b/main"], deps) == 5  # a/main b/main a/lib fmt os
    assert closure_size(["a/main"], deps) == 3
    assert closure_size([], deps) == 0


@pytest.mark.parametrize(
    ("done", "last", "since", "expected"),
    [
        (10, 10, 30.0, False),  # nothing new: no line, however long it has been
        (11, 10, 5.0, True),  # five seconds since the last line
        (11, 10, 4.9, False),
        (30, 10, 1.5, True),  # another tenth of 200 in under five seconds
        (29, 10, 1.5, False),
        (90, 10, 0.5, False),  # never two lines within a second
    ],
)
def test_a_line_is_due_every_five_seconds_or_tenth_of_the_packages(done, last, since, expected):
    assert due(done, 200, last, since) is expected


def test_progress_lines_are_the_cli_s_step_lines_and_end_at_the_total():
    from deploy_assets.cli.progress import SERVICE_PROGRESS

    assert progress_line(45, 178, "amd64", 12.04) == "compile 45/178 packages amd64 (12.0 s)"
    assert SERVICE_PROGRESS.match(progress_line(45, 178, "amd64", 12.04))
    assert final_line(3, 178, "arm64", 2.0) == (
        "compile 178/178 packages arm64 (2.0 s): 3 compiled, 175 found in the compile cache"
    )


def test_build_progress_logs_increasing_counts_then_the_total():
    lines: list[str] = []
    progress = BuildProgress(total=20, platform="amd64", log=lines.append)
    progress.start(100.0)
    events = BuildEvents(on_compile=progress.compiled)
    clock = 100.0
    for n in range(12):
        events.feed(
            json.dumps({"ImportPath": f"p{n}", "Action": "build-output", "Output": f"p{n}\n"})
        )
        clock += 0.6
        progress.tick(clock)
    progress.finish(clock + 0.1)
    # Two packages are a tenth of 20: a line for each two, as they are a second apart or more.
    assert lines == [
        "compile 2/20 packages amd64 (1.2 s)",
        "compile 4/20 packages amd64 (2.4 s)",
        "compile 6/20 packages amd64 (3.6 s)",
        "compile 8/20 packages amd64 (4.8 s)",
        "compile 10/20 packages amd64 (6.0 s)",
        "compile 12/20 packages amd64 (7.2 s)",
        "compile 20/20 packages amd64 (7.3 s): 12 compiled, 8 found in the compile cache",
    ]


def test_only_a_toolchain_without_build_json_is_refused_as_too_old():
    assert without_json(
        "flag provided but not defined: -json\nusage: go build ...\n", "/opt/go"
    ).startswith("/opt/go has no `go build -json`")
    assert without_json("# example.com/x\nx.go:1:1: undefined: json\n", "go") == ""
