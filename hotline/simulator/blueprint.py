"""The simulator's blueprint (/simulator): routes.py registers the pretend phones' pages on it."""

from flask import Blueprint

bp = Blueprint("simulator", __name__, url_prefix="/simulator")
