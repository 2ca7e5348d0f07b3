"""Rewrite the answers printed on a page after the service changed.

    hatch run test:python docs/tests/refresh_examples.py docs/quickstart.rst

Runs the page's commands like ``test_quickstart.py`` does. An answer that
still matches is left alone; one that does not is replaced by what the
service answers now — the same status line and header names, the current
values and body — with the ids, timestamps and tokens the page already uses
put back in place of the new run's, so the rest of the page stays valid.
Read the diff before committing: the point of the test is that a changed
answer is a decision, not an accident.
"""

import copy
import importlib.util
import json
import sys
from pathlib import Path

import webtest
from pyramid.paster import get_app

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("page_examples", HERE / "test_quickstart.py")
pages = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pages)


def current_answer(language, answer, response, bindings):
    """The answer block as the service gives it now, in the page's values."""
    if language == "http":
        head = answer.partition("\n\n")[0].splitlines()
        lines = [f"HTTP/1.1 {response.status}"]
        for header in head[1:]:
            name = header.partition(":")[0]
            if name.lower() in pages.PRESENT_ONLY and name in response.headers:
                lines.append(header)  # a date or a length: the page's value is as good
            else:
                lines.append(f"{name}: {response.headers.get(name, '')}")
        text = "\n".join(lines)
        if response.body and "json" in (response.content_type or ""):
            text += "\n\n" + json.dumps(response.json, indent=2, ensure_ascii=False)
    else:
        text = json.dumps(response.json, indent=2, ensure_ascii=False)
    reverse = {actual: documented for documented, actual in bindings.values.items()}
    for actual in sorted(reverse, key=len, reverse=True):
        text = text.replace(actual, reverse[actual])
    return text


def _bind(bindings, documented, actual):
    """Bind one value if it can be, ignoring conflicts (the answer changed)."""
    try:
        bindings.bind(documented, actual, "")
    except AssertionError:
        pass


def _walk(documented, actual, bindings, key=None):
    if key in pages.BOUND_KEYS and not isinstance(documented, (dict, list)):
        _bind(bindings, documented, actual)
    elif isinstance(documented, dict) and isinstance(actual, dict):
        for name in set(documented) & set(actual):
            _walk(documented[name], actual[name], bindings, name)
    elif isinstance(documented, list) and isinstance(actual, list):
        for mine, theirs in zip(documented, actual):
            _walk(mine, theirs, bindings, key)


def bind_leniently(language, answer, response, bindings):
    """Bind the ids, timestamps and tokens of an answer that no longer matches,
    where the page's structure still lines up with the service's, so that the
    page's values keep standing for the same records further down."""
    body = answer
    if language == "http":
        head, _, body = answer.partition("\n\n")
        for line in head.splitlines()[1:]:
            name, _, value = line.partition(":")
            actual = response.headers.get(name.strip())
            if actual and name.strip().lower() == "etag":
                _bind(bindings, int(value.strip().strip('"')), int(actual.strip('"')))
            elif actual and name.strip().lower() == "next-page":
                _bind(bindings, pages._token(value.strip()), pages._token(actual))
    if body.strip() and "json" in (response.content_type or ""):
        _walk(json.loads(body), response.json, bindings)


def refresh(path: Path) -> int:
    """Rewrite the answers of ``path`` that no longer match; return how many."""
    text = path.read_text()
    app = webtest.TestApp(get_app(str(pages.INI)))
    bindings = pages.Bindings()
    changed = 0
    for command, language, answer, line in pages.examples(text):
        request = pages.parse_command(bindings.apply(command))
        response = app.request(request["path"], method=request["method"], headers=request["headers"],
                               body=request["body"] or b"", base_url=pages.BASE_URL, expect_errors=True)
        trial = copy.deepcopy(bindings)
        try:
            pages.match_answer(language, answer, response, trial, f"{path.name}:{line}")
            bindings = trial
            continue
        except AssertionError as exc:
            print(f"{path.name}:{line}: {str(exc).splitlines()[0]}", file=sys.stderr)
        bind_leniently(language, answer, response, bindings)
        new = current_answer(language, answer, response, bindings)
        pages.match_answer(language, new, response, bindings, f"{path.name}:{line} (refreshed)")
        text = replace_block(text, command, answer, new)
        changed += 1
    path.write_text(text)
    return changed


def replace_block(text, command, old, new):
    """Replace the answer block ``old`` that follows ``command`` in ``text``."""
    first = command.splitlines()[0].strip()
    start = next(i for i, line in enumerate(text.splitlines(keepends=True)) if line.strip() == first)
    offset = sum(len(line) for line in text.splitlines(keepends=True)[:start])
    lead = text[offset:].splitlines()[0]
    pad = lead[: len(lead) - len(lead.lstrip())]

    def indent(block):
        return "\n".join(pad + line if line else "" for line in block.splitlines())

    position = text.index(indent(old), offset)
    return text[:position] + indent(new) + text[position + len(indent(old)):]


if __name__ == "__main__":
    for name in sys.argv[1:] or [str(pages.DOCS / page) for page in pages.PAGES]:
        print(f"{name}: {refresh(Path(name))} answer(s) rewritten", file=sys.stderr)
