"""Path parameters that carry a name: ``{operation_id:name}`` takes the rest of the path as it is.

Starlette's default ``{x}`` stops at "/", so ``/operations/..%2F..%2Fetc`` (which the server
decodes to ``/operations/../../etc``) would match no route and answer 404 without the name ever
being judged; its ``{x:path}`` (``.*``) stops at a newline and, with the route's ``$``, silently
drops a trailing one. The ``name`` convertor matches any non-empty text, so every value reaches
its :mod:`ktrdr.names` type and a hostile one is refused with 400 INVALID_NAME naming the field.
An empty one matches nothing, so ``/operations/`` is still Starlette's redirect to the list.
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor


class NameConvertor(Convertor[str]):
    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("name", NameConvertor())


def name_param(param: str) -> str:
    """``{param:name}``, for a route path (importing this module registers the convertor)."""
    return "{" + param + ":name}"
