"""Encrypted backups of a booth node's SQLite database (issue 9, point 3).

``crypto`` (pure: the file format and the keys), ``services`` (online backup, list, restore),
``cli`` (``flask backup …``), ``periodic`` (the background thread that ``booth/serve.py`` starts).
"""
