"""Syntax: source text -> AST (grammar.lark, postlex.py, parser.py, build.py)."""
