"""What a process pays to start: libraries that take long to import, and work such as a
password hash, wait for the first use that needs them."""

from __future__ import annotations

import subprocess
import sys

# Each takes from a tenth of a second to seconds to import, and most processes never use it:
# Stripe's SDK (billing talking to Stripe), WeasyPrint and fontTools' subsetter (the first PDF).
ON_DEMAND_MODULES = ("stripe", "weasyprint", "fontTools.subset")


def test_processes_start_without_loading_what_they_may_never_use() -> None:
    """The app, the command line and every package's tasks start without the on-demand
    libraries and without making the sign-in's dummy password hash; the served app makes the
    hash as it starts, before its first sign-in, and loads the PDF renderer before its first
    request."""
    code = (
        "import sys\n"
        "from infra import security\n"
        "from portal.app import create_app\n"
        "from portal.server import served_app\n"
        "import portal.cli, tenants.tasks, onboarding.tasks, training.tasks, permits.tasks\n"
        "import geofence.tasks, scoring.tasks\n"
        "create_app()\n"
        f"loaded = [name for name in {ON_DEMAND_MODULES!r} if name in sys.modules]\n"
        "assert not loaded, f'imported at startup: {loaded}'\n"
        "assert security._dummy_hash.cache_info().currsize == 0, 'hashed at startup'\n"
        "from infra import documents\n"
        "started = served_app().on_startup\n"
        "assert security.warm_up in started and documents.warm_up in started\n"
    )
    started = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert started.returncode == 0, started.stderr
