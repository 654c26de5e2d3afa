"""Where runs come from: BIDS discovery, events and their transforms, fMRIPrep
confounds as nilearn loads them, and saved design matrices.

Nothing here knows about diagnostics or reports: each adapter turns files into
DataFrames and resolved settings, naming the file, column and row of any bad input.
"""
