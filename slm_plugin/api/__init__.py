"""slm-api: the REST API of synchronized group migrations (WSGI, webob and routes)."""
