"""The package version, in a module of its own so that lower layers can record it without importing the
package's ``__init__`` (which pulls in every part)."""

__version__ = "0.1.0"
