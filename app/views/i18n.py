"""Languages: which one a request is answered in, the switcher, and the console scripts' share of the catalog.

The language is the one the user picked (``/language/<code>``, kept in the session), else the best match of the
browser's ``Accept-Language`` among ``LANGUAGES``, else ``BABEL_DEFAULT_LOCALE``. Times are shown in
``HES_TIMEZONE``. Scripts translate with ``HES.t("…")``; the strings they use are found in the script files the way
``pybabel extract`` finds them (see babel.cfg) and sent with each page in the current language."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from babel.messages.extract import extract_from_file
from flask import current_app, has_request_context, redirect, request, session, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.baseviews import BaseCRUDView
from flask_appbuilder.fields import EnumField
from flask_babel import LazyString, get_babel, get_locale, gettext, lazy_gettext, refresh

from app.views.stock import safe_return_url
from app.views.vocabulary import ALL_WORDS, word

STATIC = Path(__file__).resolve().parent.parent / "static"
SCRIPT_FOLDERS = ("hes", "alerts", "my_meters", "remote", "reports")  # the console's own scripts (not vendor/)


def select_locale() -> str:
    """The request's language code: the user's choice, else the browser's, else the default."""
    languages = current_app.config["LANGUAGES"]
    default = current_app.config.get("BABEL_DEFAULT_LOCALE", "en")
    if not has_request_context():
        return default
    asked = request.args.get("_l_")  # FAB's API searches name a language this way
    if asked in languages:
        return asked
    chosen = session.get("locale")  # set only by a choice: /language/<code> or FAB's /lang/<code>
    if chosen in languages:
        return chosen
    return request.accept_languages.best_match(list(languages), default=default)


def select_timezone() -> str:
    """Every time on screen is in the utility's zone."""
    return current_app.config.get("HES_TIMEZONE") or "UTC"


def current_language() -> str:
    """The language code of this answer (``fr``, ``en``)."""
    locale = get_locale()
    return locale.language if locale else current_app.config.get("BABEL_DEFAULT_LOCALE", "en")


@cache
def script_messages() -> tuple[str, ...]:
    """Every string the console's scripts pass to ``t(…)``, as ``pybabel extract`` sees them."""
    found: set[str] = set()
    for folder in SCRIPT_FOLDERS:
        for path in sorted((STATIC / folder).rglob("*.js")):
            for _line, message, _comments, _context in extract_from_file("javascript", str(path), keywords={"t": None}):
                if isinstance(message, str) and message:
                    found.add(message)
    return tuple(sorted(found))


def script_catalog() -> dict[str, str]:
    """The scripts' strings, and the data words they show (``HES.t(HES.word(code))``), in the current language;
    nothing to send in the default language."""
    if current_language() == current_app.config.get("BABEL_DEFAULT_LOCALE", "en"):
        return {}
    return {message: gettext(message) for message in (*script_messages(), *ALL_WORDS)}


def languages_menu() -> list[dict]:
    """The switcher's entries: code, name, link back to this page, and which one is current."""
    here = request.full_path.rstrip("?") if has_request_context() else "/"
    current = current_language()
    return [{"code": code, "name": spec.get("name", code), "current": code == current,
             "url": url_for("LanguageView.choose", code=code, next=here)}
            for code, spec in current_app.config["LANGUAGES"].items()]


class LanguageView(BaseView):
    """``/language/<code>?next=<path>``: remember the choice and go back where the user was."""

    route_base = "/language"
    default_view = "choose"

    @expose("/<string:code>")
    def choose(self, code: str):
        if code in current_app.config["LANGUAGES"]:
            session["locale"] = code
            refresh()
        wanted = request.args.get("next") or ""
        back = safe_return_url(wanted) or (wanted if wanted.startswith("/login/") else None)
        return redirect(back or url_for("HomeView.index"))


def translate_labels(appbuilder: AppBuilder) -> None:
    """Column labels the framework generated in English (views that set no ``label_columns``) become catalog
    look-ups, made when the page is drawn; run after every view is registered."""
    for view in appbuilder.baseviews:
        if isinstance(view, BaseCRUDView):
            view.label_columns = {column: lazy_gettext(label) if isinstance(label, str) else label
                                  for column, label in view.label_columns.items()}


def _translate_enum_choices() -> None:
    """The framework's select of an enum column lists raw values ("dial_in"); list them as translated words."""
    if getattr(EnumField, "_hes_words", False):
        return
    original = EnumField.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.choices = [(value, LazyString(word, label)) for value, label in self.choices]

    EnumField.__init__ = __init__
    EnumField._hes_words = True


def register(appbuilder: AppBuilder) -> None:
    """Our locale and time-zone selectors replace FAB's; the switcher and script catalog for the layout."""
    app = current_app
    babel = get_babel(app)
    babel.locale_selector = select_locale
    babel.timezone_selector = select_timezone
    app.add_template_global(languages_menu, "hes_languages")
    app.add_template_global(script_catalog, "hes_script_catalog")
    app.add_template_global(current_language, "hes_language")
    app.add_template_filter(word, "hes_word")
    appbuilder.add_view_no_menu(LanguageView)
    _translate_enum_choices()
