"""federation.logging.capture_logs leaves structlog as it found it: unconfigured stays
unconfigured. Restoring the old settings with ``structlog.configure`` marked an unconfigured
process configured (with structlog's defaults, which print to stdout), so a CLI command run after
it in the same process skipped setting up its logging to stderr and wrote its log line into its
stdout, ahead of the answer the rekey tests read there."""

from __future__ import annotations

import io

import structlog

from federation.logging import capture_logs, configure


def test_an_unconfigured_process_stays_unconfigured() -> None:
    structlog.reset_defaults()
    with capture_logs() as logs:
        structlog.get_logger().info("inside")
    assert [e["event"] for e in logs] == ["inside"]
    assert not structlog.is_configured()


def test_a_configured_process_gets_its_configuration_back() -> None:
    stream = io.StringIO()
    configure(stream=stream, json=True)
    try:
        before = structlog.get_config()
        with capture_logs():
            structlog.get_logger().info("inside")
        assert structlog.is_configured() and structlog.get_config() == before
        structlog.get_logger().info("after")
        assert '"event":"after"' in stream.getvalue().replace(" ", "")
        assert "inside" not in stream.getvalue()
    finally:
        structlog.reset_defaults()
