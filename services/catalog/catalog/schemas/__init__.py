"""Request and response models (*In / *Out), one module per resource; Out built with
``model_validate`` from the table rows."""
