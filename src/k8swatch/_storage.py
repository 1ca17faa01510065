"""The storage protocol: what a REST storage offers to the server layer."""

from __future__ import annotations

from typing import Any

import attrs
from typing_extensions import final


@final
@attrs.frozen
class ObjectList:
    """One page of a list: Kubernetes-shaped item dicts and the list's metadata.

    Attributes:
        items: The objects, in the storage's order.
        resource_version: The RV of the snapshot; a watch started from it misses
            nothing and repeats nothing ("" when the storage has none).
        continue_token: Opaque token for the next page ("" on the last page).
        remaining_item_count: Items after this page, when known.
    """

    items: tuple[dict[str, Any], ...] = attrs.field(converter=tuple, default=())
    resource_version: str = ""
    continue_token: str = ""
    remaining_item_count: int | None = None
