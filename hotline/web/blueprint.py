"""The coordinators' pages' blueprint: every page module registers its routes on it."""

from flask import Blueprint

bp = Blueprint("web", __name__)
