"""Request and response models (``*In`` / ``*Out``), one module per resource; every ``Out`` is
built with ``model_validate`` from its row."""
