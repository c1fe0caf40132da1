"""The JSON Schema of the spec, generated from the models, for editors and linters."""

from __future__ import annotations

from typing import Any

from provisioner.spec.models import Spec


def spec_json_schema() -> dict[str, Any]:
    schema = Spec.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "provisioner spec"
    schema["description"] = (
        "Zones, mail servers, users and certificate authorities of a DANE-protected mail "
        "deployment, as read by the provisioner command."
    )
    return schema
