"""The HTTP side of tierdesk: the Flask application factory and its blueprints."""
