"""The output-folder contract shared by both levels: where each file lives, atomic writes
(``files``) and the ``dataset_description.json``/provenance manifest (``manifest``).
"""
