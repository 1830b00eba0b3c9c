"""What hw6.ipynb's cells share (results.py), the answers in words (answers.py) and report.pdf (report.py)."""
