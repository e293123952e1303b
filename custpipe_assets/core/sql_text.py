"""Python values written into DuckDB SQL text, for the modules that build statements (the SQL checks, bronze's
literal lists, the DuckLake attach): one quoting rule, in a module that imports nothing heavier than the standard
library, so a pure transform or the warehouse's connection code can use it without loading Pandera."""

from datetime import date


def sql_literal(value: object) -> str:
    """A Python value as a DuckDB SQL literal (text quoted, dates as DATE '...')."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return repr(value)
