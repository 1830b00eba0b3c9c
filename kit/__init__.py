"""Low-level helpers every part of the project uses: atomic writes, the command-line conventions, the errors
that end a command with one line, figures and spreads over seeds. Nothing here imports the rest of hw6."""
