"""Server-rendered pages (Jinja + HTMX), signed in with a session cookie and CSRF-protected."""
