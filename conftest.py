"""Root conftest.

pytest's importlib mode names ``gateway/tests/conftest.py`` ``gateway.tests.conftest`` and,
when ``gateway`` is not imported yet, imports the *folder* ``gateway/`` as a namespace package
under that name, hiding the real ``gateway`` package (gateway/gateway). Importing the real
packages here first avoids that.
"""

import catalog  # noqa: F401
import contracts  # noqa: F401
import gateway  # noqa: F401
import identity  # noqa: F401
import orders  # noqa: F401
import payments  # noqa: F401
import quota  # noqa: F401

# The longest tests start first (prefixes of test ids, longest first), so the suite does not end
# with one worker grinding a long test alone: measured, the two lag-matrix runs (collected
# last) took 390-500 s each and were most of the last seven minutes of a 31-minute run.
LONG_POLES = (
    "tests/saga/test_lag_matrix.py",
    "tests/saga/",
    "tests/portal/test_browser",
    "tests/portal/",
    "tests/e2e/",
)


def _rank(nodeid: str) -> int:
    return next((i for i, prefix in enumerate(LONG_POLES) if nodeid.startswith(prefix)), len(LONG_POLES))


def pytest_collection_modifyitems(items):  # type: ignore[no-untyped-def]
    """Stable: a module's tests stay together and in their order (module-scoped fixtures)."""
    items.sort(key=lambda item: _rank(item.nodeid))


def pytest_xdist_make_scheduler(config, log):  # type: ignore[no-untyped-def]
    """``make test`` (``-n 3``): every test is its own unit of work as with ``--dist load``,
    except that a portal module's tests (tests/portal) stay together on one worker, since they
    share one platform of nine processes (a module-scoped fixture): spread over three workers,
    each would start its own. xdist's ``loadgroup`` would do this but does not work with
    pytest 9 (it rewrites a test id pytest no longer keeps)."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False  # keep the long poles first (pytest_collection_modifyitems)

    class PortalModulesTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith("tests/portal/"):
                return nodeid.split("::", 1)[0]
            return nodeid

    return PortalModulesTogether(config, log)
