"""The group level: reading and checking records, the sign-off (``pipeline``), the across-subject
numbers (``summary``, ``attribution``), the outlier table (``outliers``) and reviewer ratings (``ratings``).
"""
