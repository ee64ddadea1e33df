"""Digit Lab: `streamlit run Home.py`."""

from dashboard.app import main

main()
