"""Helpers shared by the tests (importable as ``support`` thanks to ``pythonpath = ["tests"]``).

- :mod:`support.notebooks`: execute a notebook with nbclient in a scratch copy of its folder
  (``run_notebook``), read its outputs (``cell_outputs_text``), write small notebooks
  (``write_notebook``).
- :mod:`support.jupyter`: start a real JupyterLab server (``JupyterLab``). It re-exports
  :mod:`support.lab_page`, which drives the server from headless Chromium with Playwright
  (``open_notebook``, ``run_all``, ``click_button``, ...) and reads what the browser shows
  (``bokeh_source_lengths``, ``assert_no_widget_errors``).
- :mod:`support.voila`: serve one notebook as an app with Voila (``Voila``), with the command the
  README gives (``app_command``; ``parse_command`` reads a README command).

The fixtures built on them (``jupyter_lab``, ``browser_page``) live in ``tests/conftest.py``.
"""
