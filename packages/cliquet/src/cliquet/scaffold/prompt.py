"""The questions ``cliquet init`` asks in a terminal, with questionary
(the ``init`` extra: ``pip install 'cliquet[init]'``).

Only what the command line left open is asked; without questionary, or
outside a terminal, the flags (and their defaults) decide.
"""

from __future__ import annotations

from cliquet.scaffold import CACHES, FEATURES, STORAGES, ScaffoldError, validate_name

FEATURE_HELP = {
    "indexing": "cliquet-indexing: every change indexed, /v1/search/{resource}",
    "elasticsearch": "cliquet-elasticsearch: the index in Elasticsearch",
    "oidc": "cliquet-oidc: sign-in with OpenID Connect providers",
    "admin": "cliquet-admin: a web console at /v1/admin/",
}


def load_questionary():
    """Return the questionary module, or ``None`` when it is not installed."""
    try:
        import questionary
    except ImportError:
        return None
    return questionary


def _name_problem(text: str):
    try:
        validate_name(text)
    except ScaffoldError as exc:
        return str(exc)
    return True


def ask(questionary, answers: dict, **io) -> dict:
    """Ask for each choice missing from ``answers`` (``name``, ``storage``,
    ``cache``, ``features``) and return them all; ``KeyboardInterrupt`` when
    the user gives up (Ctrl-C). ``io`` (``input``, ``output``) goes to each
    question: prompt_toolkit's own, for tests."""
    answers = dict(answers)

    def asked(question):
        value = question.ask()  # None: interrupted
        if value is None:
            raise KeyboardInterrupt
        return value

    if not answers.get("name"):
        answers["name"] = asked(questionary.text("Project name (a Python package name):", default="myservice",
                                                 validate=_name_problem, **io))
    if not answers.get("storage"):
        answers["storage"] = asked(questionary.select("Storage (records, and permissions):", choices=list(STORAGES),
                                                      default="memory", **io))
    if not answers.get("cache"):
        answers["cache"] = asked(questionary.select("Cache:", choices=list(CACHES), default="memory", **io))
    if answers.get("features") is None:
        choices = [questionary.Choice(FEATURE_HELP[f], value=f) for f in FEATURES]
        answers["features"] = asked(questionary.checkbox("Packages to include:", choices=choices, **io))
    return answers
