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
