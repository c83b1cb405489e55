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

# The two lag-matrix runs start first: each takes 150 s alone and 400-500 s beside the rest,
# and collected last they were most of the last seven minutes of a 31-minute run (one worker
# grinding each while the third had nothing left). Starting every heavy test first was worse
# (33 minutes: the e2e and portal platforms all starting at once), so only these two move.
FIRST = ("tests/saga/test_lag_matrix.py",)


def pytest_collection_modifyitems(items):  # type: ignore[no-untyped-def]
    """Stable: every other test keeps its place, a module's tests stay together."""
    items.sort(key=lambda item: not item.nodeid.startswith(FIRST))


def pytest_xdist_make_scheduler(config, log):  # type: ignore[no-untyped-def]
    """``make test`` (``-n 3``): every test is its own unit of work as with ``--dist load``,
    except that a portal module's tests (tests/portal) stay together on one worker, since they
    share one platform of nine processes (a module-scoped fixture): spread over three workers,
    each would start its own. xdist's ``loadgroup`` would do this but does not work with
    pytest 9 (it rewrites a test id pytest no longer keeps)."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False  # keep the collection order (FIRST above)

    class PortalModulesTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith("tests/portal/"):
                return nodeid.split("::", 1)[0]
            return nodeid

    return PortalModulesTogether(config, log)
