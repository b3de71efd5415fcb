"""PEP 3333: the environ, wsgi.input, start_response and file_wrapper, and loading the application."""
