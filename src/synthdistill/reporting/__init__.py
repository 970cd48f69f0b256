"""Reporting: costs, run facts, tables, figures and the decision report."""
