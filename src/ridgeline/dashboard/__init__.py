"""The web dashboard: a live view of searches in a store, with their controls.

``ridgeline dashboard`` serves every experiment of a store; each coordinator also serves one
for its own experiment, on a second loopback port of its event loop (``hosting``). Pages are
plain HTML and JavaScript drawing with the plotly.js that the ``plotly`` package ships; the
server sends JSON it computed and downsampled (``data``) and pushes what changes over
server-sent events (``live``). Access needs the login link printed on the terminal
(``auth``).
"""
