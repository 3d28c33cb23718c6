"""One --schema spec of each kind: a pydantic model, a dataclass, a TypedDict and a JSON-schema
dict. The unit tier imports them; the kernel tier runs this file's text as a notebook cell
(cells.SCHEMA_CELL), so both tiers ask for the same types."""

import dataclasses
from typing import TypedDict

from pydantic import BaseModel


class Person(BaseModel):
    name: str
    age: int
    tags: list[str]


@dataclasses.dataclass
class Book:
    title: str
    year: int
    rating: float


class Point(TypedDict):
    x: int
    label: str


city = {"type": "object", "properties": {"city": {"type": "string"},
                                         "population": {"type": "integer"}},
        "required": ["city", "population"]}
