"""Labels: self-consistency votes, ensembles, review files and corrections."""
