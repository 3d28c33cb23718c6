"""Validate request bodies against OpenAI's published OpenAPI description (vendored subset)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

# A verbatim subset of openai/openai-openapi's openapi.yaml (MIT); see openai_openapi/README.md.
SPEC = Path(__file__).resolve().parent / "openai_openapi" / "openapi.yaml"


@lru_cache(maxsize=None)
def validator(schema_name: str) -> Draft202012Validator:
    """A validator for components.schemas.<schema_name>, with $refs resolved in the document."""
    document = yaml.load(SPEC.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader
                         if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader)
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry = Registry().with_resource("urn:openai", resource)
    schema = {"$ref": f"urn:openai#/components/schemas/{schema_name}"}
    return Draft202012Validator(schema, registry=registry)


def errors(body: Any, schema_name: str = "CreateChatCompletionRequest") -> list[str]:
    """Every way ``body`` breaks the schema (empty when valid)."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator(schema_name).iter_errors(body)]


def assert_bodies_valid(endpoint: Any) -> None:
    """Every chat body a FakeEndpoint got matches OpenAI's CreateChatCompletionRequest."""
    for request in endpoint.chat_requests:
        problems = errors(request.body)
        assert not problems, f"body not valid against CreateChatCompletionRequest: {problems}"
