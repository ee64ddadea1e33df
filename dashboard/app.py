"""The multipage app: page config and navigation. Each page is a module of dashboard/pages."""

from pathlib import Path

import streamlit as st

PAGES_DIR = Path(__file__).parent / "pages"


def main() -> None:
    st.set_page_config(page_title="Digit Lab", page_icon="🔢", layout="wide")
    pages = {
        "Digit Lab": [
            st.Page(PAGES_DIR / "data.py", title="Data", icon="🗂️", default=True),
        ],
    }
    st.navigation(pages).run()
