"""What every ktrdr HTTP server shares, the backend and the workers alike.

- :mod:`ktrdr.web.errors`: every error as the one envelope, refused requests logged safely;
- :mod:`ktrdr.web.guard`: the pure-ASGI guard (bearer token, content type, body size);
- :mod:`ktrdr.web.tokens`: the bearer tokens a server accepts and an internal client presents.

Imported by :mod:`ktrdr.api`, :mod:`ktrdr.control` and :mod:`ktrdr.worker`; imports none of them.
"""
