"""Put first on PYTHONPATH by `lab launch`: start the lab's capture (lab.tracking.autolog), then run the
`sitecustomize` this one hides, if any. Never raises into the program."""

import importlib
import os
import sys


def _start_capture() -> None:
    try:
        from lab.tracking import autolog
    except ImportError:  # another interpreter than the lab's: reach the lab where the launcher said it is
        if not os.environ.get("LAB_PACKAGE_ROOT"):
            return
        sys.path.append(os.environ["LAB_PACKAGE_ROOT"])
        from lab.tracking import autolog
    autolog.install()


def _run_hidden_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    mine = sys.modules.pop("sitecustomize", None)
    saved = sys.path[:]
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    try:
        importlib.import_module("sitecustomize")
    except ModuleNotFoundError as error:
        if error.name != "sitecustomize":
            raise
        if mine is not None:
            sys.modules["sitecustomize"] = mine
    finally:
        sys.path[:] = saved + [entry for entry in sys.path if entry not in saved]


try:
    _start_capture()
except Exception as error:  # noqa: BLE001 - the lab never stops the program it wraps
    print(f"lab: warning: capture is off ({type(error).__name__}: {error})", file=sys.stderr)
_run_hidden_sitecustomize()
