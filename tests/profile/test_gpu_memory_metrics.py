"""GPU memory per variant from Triton's Prometheus metrics (`nv_gpu_memory_used_bytes`)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from mme_operator.profile.sweep import gpu_memory_used_mib

# The lines Triton's metrics endpoint serves on a two-GPU machine (other families trimmed).
METRICS = b"""\
# HELP nv_gpu_memory_total_bytes GPU total memory, in bytes
# TYPE nv_gpu_memory_total_bytes gauge
nv_gpu_memory_total_bytes{gpu_uuid="GPU-1"} 24146608128
# HELP nv_gpu_memory_used_bytes GPU used memory, in bytes
# TYPE nv_gpu_memory_used_bytes gauge
nv_gpu_memory_used_bytes{gpu_uuid="GPU-1"} 1073741824
nv_gpu_memory_used_bytes{gpu_uuid="GPU-2"} 5.24288e+08
"""


@pytest.fixture
def metrics_url() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(METRICS)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def test_used_memory_is_summed_over_gpus_in_mib(metrics_url: str) -> None:
    assert gpu_memory_used_mib(metrics_url) == 1024 + 500


def test_no_metrics_means_no_figure() -> None:
    assert gpu_memory_used_mib(None) is None
    assert gpu_memory_used_mib("http://127.0.0.1:9/metrics") is None
