"""The command line's commands: each asks for what it needs (secrets, a confirmation), calls one use case of
`preau.node.actions`, and renders the data it returns in the person's language (`cli.say.Say`).

Each is `fn(settings, *, lang, **options)` and returns the text to print, an exit code or None (`cli.main`).
Imported only when its command runs, so `preau --help` stays fast.
"""
