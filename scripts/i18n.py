"""The console's translations: extract every UI string, merge it into each language's catalog, compile, check.

    python scripts/i18n.py extract   # translations/messages.pot from Python, Jinja templates and the scripts
    python scripts/i18n.py update    # merge the template into translations/<lang>/LC_MESSAGES/messages.po
    python scripts/i18n.py compile   # messages.po -> messages.mo (committed, so a clean checkout runs as is)
    python scripts/i18n.py check     # exit 1 if a string has no translation or a .mo is older than its .po

Python and templates are read with gettext's usual names (``_``, ``gettext``, ``lazy_gettext``, ``N_``);
the scripts with ``t(…)`` only (``HES.t``), so a Python ``t["key"]`` is not taken for a message.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "translations"
TEMPLATE = TRANSLATIONS / "messages.pot"
LANGUAGES = ("fr",)
PYTHON_KEYWORDS = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "lazy_ngettext": (1, 2)}
PYTHON_AND_TEMPLATES = [("app/**.py", "python"), ("app/templates/**.html", "jinja2")]
SCRIPT_FOLDERS = ("hes", "alerts", "my_meters", "remote", "reports")
SCRIPTS = [(f"app/static/{folder}/**.js", "javascript") for folder in SCRIPT_FOLDERS]


def extract() -> Catalog:
    """Every UI string of the console, as one catalog template."""
    catalog = Catalog(project="HES Core", fuzzy=False)
    passes = ((PYTHON_AND_TEMPLATES, PYTHON_KEYWORDS), (SCRIPTS, {"t": None}))
    for method_map, keywords in passes:
        for filename, lineno, message, comments, context in extract_from_dir(
                str(ROOT), method_map, keywords=keywords, strip_comment_tags=True):
            catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def po_path(language: str) -> Path:
    return TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def write_catalog(catalog: Catalog, path: Path, template: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, catalog, width=120, sort_output=True, omit_header=False, include_previous=False,
                 ignore_obsolete=True, no_location=not template)


def update() -> None:
    """The template from the sources, merged into each language's catalog (new strings empty, gone ones dropped)."""
    template = extract()
    write_catalog(template, TEMPLATE, template=True)
    for language in LANGUAGES:
        path = po_path(language)
        catalog = read_catalog(path, language) if path.exists() else Catalog(locale=language)
        catalog.update(template, no_fuzzy_matching=True)
        write_catalog(catalog, path)


def compile_all() -> None:
    """Each language's .po as the .mo that Flask-Babel reads."""
    for language in LANGUAGES:
        catalog = read_catalog(po_path(language), language)
        with po_path(language).with_suffix(".mo").open("wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)


def untranslated(language: str) -> list[str]:
    """UI strings (from the sources, not the .po) with no usable translation in ``language``."""
    catalog = read_catalog(po_path(language), language)
    missing = []
    for message in extract():
        if not message.id:
            continue
        found = catalog.get(message.id, message.context)
        strings = found.string if found else None
        values = strings if isinstance(strings, tuple) else (strings,)
        if found is None or found.fuzzy or not all(values):
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
    return missing


def _strings(value) -> tuple:
    return tuple(value) if isinstance(value, list | tuple) else (value,)


def stale_compiled(language: str) -> list[str]:
    """Messages whose compiled translation differs from the .po (a .po edited without ``compile``)."""
    catalog = read_catalog(po_path(language), language)
    with po_path(language).with_suffix(".mo").open("rb") as handle:
        compiled = read_mo(handle)
    stale = []
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        other = compiled.get(message.id if isinstance(message.id, str) else message.id[0], message.context)
        if other is None or _strings(other.string) != _strings(message.string):
            stale.append(message.id if isinstance(message.id, str) else message.id[0])
    return stale


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    if command == "extract":
        write_catalog(extract(), TEMPLATE, template=True)
    elif command == "update":
        update()
    elif command == "compile":
        compile_all()
    elif command == "check":
        problems = [f"{lang}: no translation for {msg!r}" for lang in LANGUAGES for msg in untranslated(lang)]
        problems += [f"{lang}: .mo is stale for {msg!r} (run compile)"
                     for lang in LANGUAGES for msg in stale_compiled(lang)]
        print("\n".join(problems) or "every UI string is translated and compiled")
        return 1 if problems else 0
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
