"""Sign-in, when a deployment turns it on: an `[auth]` section in its secrets (Streamlit's own `st.login`
configuration, an OpenID Connect provider) makes every page ask who is there, and each user's runs their own.

Without it (local use) nobody signs in and everything is as it always was. Teachers, who see everyone's runs, are
named in the secrets too: `[digit_lab] teachers = ["ada@school.example"]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.util import find_spec

import streamlit as st

from core.errors import HistoryError
from core.store.location import Viewer

AUTH_SECTION = "auth"
SETTINGS_SECTION = "digit_lab"
TEACHERS_KEY = "teachers"


def sign_in_configured() -> bool:
    """Whether the deployment's secrets configure sign-in (false when there are no secrets at all)."""
    return st.secrets.load_if_toml_exists() and AUTH_SECTION in st.secrets


def signed_in() -> bool:
    return bool(st.user.get("is_logged_in"))


def identity() -> str:
    """The signed-in user's name in the run history: their e-mail, or the provider's subject identifier when it
    gives no e-mail or says the e-mail is not verified."""
    email = st.user.get("email")
    return str(email) if email and st.user.get("email_verified") is not False else str(st.user.get("sub"))


def teachers() -> set[str]:
    """The teachers named in the deployment's secrets, lower case."""
    named = st.secrets.get(SETTINGS_SECTION, {}).get(TEACHERS_KEY, [])
    return {str(name).strip().casefold() for name in ([named] if isinstance(named, str) else named)}


def viewer() -> Viewer | None:
    """Whose runs this session sees and saves: None without sign-in configured (every run, as in local use)."""
    if not sign_in_configured():
        return None
    if not signed_in():  # every page is behind the sign-in page: no page reaches this
        raise HistoryError("Sign in to see and save runs.")
    name = identity()
    return Viewer(name, teacher=name.casefold() in teachers())


def providers() -> list[str | None]:
    """The sign-in providers configured: `[auth.NAME]` sections, or the `[auth]` section itself (None)."""
    section = st.secrets[AUTH_SECTION]
    named = [name for name, value in section.items() if isinstance(value, Mapping) and "client_id" in value]
    return named or [None]


def sign_in_page() -> None:
    """The only page a session that has not signed in sees."""
    st.title("Digit Lab")
    st.markdown("Sign in to train networks and look inside them. Your runs are kept under your name: only you "
                "(and your teachers) see them.")
    if find_spec("authlib") is None:  # looked for, not imported
        st.error("Sign-in is configured, but Authlib, which it needs, is not installed on the server: "
                 "`pip install -r requirements-serve.txt`, then restart the app.")
        return
    for provider in providers():
        if st.button("Sign in" if provider is None else f"Sign in with {provider}", type="primary",
                     icon=":material/login:", key=f"sign_in.{provider}"):
            st.login(provider)


def sign_in_pages(url_paths: list[str]) -> list[st.Page]:
    """The sign-in page, at the app's address and at each of its pages' (`url_paths`): a link to a page shows the
    sign-in page rather than "Page not found"."""
    return [st.Page(sign_in_page, title="Sign in", icon=":material/login:", default=True),
            *(st.Page(sign_in_page, title="Sign in", url_path=path, visibility="hidden") for path in url_paths)]


def signed_in_sidebar(who: Viewer) -> None:
    """Who is signed in, and a way to sign out."""
    st.sidebar.caption(f"Signed in as **{who.name}**" + (" (teacher: everyone's runs)" if who.teacher else ""))
    st.sidebar.button("Sign out", icon=":material/logout:", on_click=st.logout)
