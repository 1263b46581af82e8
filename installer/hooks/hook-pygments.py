"""PyInstaller hook for pygments, replacing the stock one.

exchangelib imports ``pygments.lexers.html.XmlLexer`` and ``pygments.formatters.terminal.
TerminalFormatter`` by name (to colour XML in its debug log); those static imports are followed
anyway. The stock hook adds every lexer, formatter and style (~340 modules) for pygments'
look-ups by name, which nothing in Trackbox makes — except the formatter's default style.
"""

from __future__ import annotations

hiddenimports = ["pygments.styles.default"]
