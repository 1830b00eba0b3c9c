"""The notebook's glue: run profiles, the session that hw6.ipynb keeps between cells, and report.pdf."""
