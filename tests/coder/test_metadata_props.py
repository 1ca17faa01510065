"""Properties of the metadata checks and records: any JSON a client sends gets a 422
or is kept exactly; a record survives its encoding in Redis's format."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from k8swatch import StatusError
from k8swatch.coder._metadata import dress, kept_metadata, validate_kept_metadata
from k8swatch.redis._metadata import _decode

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
label_names = st.from_regex(r"[a-z0-9]([a-z0-9._-]{0,20}[a-z0-9])?", fullmatch=True)
metadata_fields = st.sampled_from(
    ["labels", "annotations", "finalizers", "ownerReferences", "managedFields", "name"]
)


@given(st.dictionaries(metadata_fields, json_values, max_size=5))
def test_any_metadata_is_kept_or_refused_with_422(metadata: dict[str, Any]) -> None:
    error: StatusError | None = None
    try:
        validate_kept_metadata("CoderWorkspace", "aggregation.coder.com", "a.b.c", metadata)
    except StatusError as exc:
        error = exc
    if error is not None:
        assert error.status.code == 422
        assert error.status.details is not None
        assert all(c.field.startswith("metadata.") for c in error.status.details.causes)
        return
    obj = {"metadata": {"name": "a.b.c", "resourceVersion": "5"}}
    kept = kept_metadata(metadata)
    dressed = dress(obj, kept, 7)
    for field, value in kept.items():
        assert dressed["metadata"][field] == value
    assert dressed["metadata"]["resourceVersion"] == "7"


@given(st.dictionaries(label_names, label_names, max_size=5))
def test_valid_labels_pass(labels: dict[str, str]) -> None:
    validate_kept_metadata("CoderWorkspace", "", "a.b.c", {"labels": labels})


@given(st.integers(min_value=0, max_value=2**63 - 1), st.dictionaries(st.text(), json_values))
def test_redis_record_format_round_trips(revision: int, body: dict[str, Any]) -> None:
    import json

    raw = f"{revision} {json.dumps(body, separators=(',', ':'))}".encode()
    assert _decode(raw) == (revision, body)
