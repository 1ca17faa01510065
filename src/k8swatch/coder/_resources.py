"""`build_resource_specs`: the Coder storages as resources ``create_app`` serves.

This module imports ``k8swatch.server`` (its public facade) at import time,
against the layer diagram's order (server above coder). It adds no edge:
``k8swatch.coder`` already loads ``k8swatch.server`` whole on import, because
its printer columns (``CODER_*_COLUMNS``) are ``PrinterColumn``s, and
``k8swatch.server`` never imports ``k8swatch.coder``, so there is no cycle. An
import inside the function would only hide the dependency. The other way round,
a server function taking Coder storages, would make the generic server know
one of its users; here the adapter describes its own resources.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from k8swatch.coder._models import GROUP, VERSION, CoderTemplate, CoderWorkspace
from k8swatch.coder._openapi_schemas import (
    CODER_TEMPLATE_COLUMNS,
    CODER_WORKSPACE_COLUMNS,
    coder_template_schema,
    coder_workspace_schema,
)
from k8swatch.server import ResourceSpec

if TYPE_CHECKING:
    from k8swatch.coder._templates import TemplateStorage
    from k8swatch.coder._workspaces import WorkspaceStorage

__all__ = ["build_resource_specs"]


def build_resource_specs(
    templates: TemplateStorage, workspaces: WorkspaceStorage
) -> tuple[ResourceSpec, ResourceSpec]:
    """Return the resources serving *templates* and *workspaces*, ready for ``create_app``.

    ``codertemplates`` and ``coderworkspaces`` in
    ``aggregation.coder.com/v1alpha1``, namespaced, each with its structural
    schema ([`coder_template_schema`][k8swatch.coder.coder_template_schema],
    [`coder_workspace_schema`][k8swatch.coder.coder_workspace_schema]: what
    ``kubectl explain`` prints and ``fieldValidation`` checks) and printer
    columns ([`CODER_TEMPLATE_COLUMNS`][k8swatch.coder.CODER_TEMPLATE_COLUMNS],
    [`CODER_WORKSPACE_COLUMNS`][k8swatch.coder.CODER_WORKSPACE_COLUMNS]). The
    specs come in the order of the arguments, which is the order discovery
    lists them in, as ``k8swatch serve`` serves them:

    ```python
    from k8swatch.server import create_app

    app = create_app(build_resource_specs(templates, workspaces))
    ```

    Args:
        templates: The storage served as ``codertemplates``.
        workspaces: The storage served as ``coderworkspaces``.

    Returns:
        Two [`ResourceSpec`][k8swatch.server.ResourceSpec]s,
        ``(codertemplates, coderworkspaces)``, offering the verbs each storage
        implements ([`storage_verbs`][k8swatch.server.storage_verbs]).
    """
    return (
        ResourceSpec(
            GROUP,
            VERSION,
            CoderTemplate.PLURAL,
            CoderTemplate.KIND,
            templates,
            singular=CoderTemplate.SINGULAR,
            schema=coder_template_schema(),
            printer_columns=CODER_TEMPLATE_COLUMNS,
        ),
        ResourceSpec(
            GROUP,
            VERSION,
            CoderWorkspace.PLURAL,
            CoderWorkspace.KIND,
            workspaces,
            singular=CoderWorkspace.SINGULAR,
            schema=coder_workspace_schema(),
            printer_columns=CODER_WORKSPACE_COLUMNS,
        ),
    )
