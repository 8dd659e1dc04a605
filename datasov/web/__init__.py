"""``datasov ui``: a local web app for owners, labs and operators (see :mod:`.app` for the pages).

auth         one-time login token -> session cookie; CSRF token on every state-changing request
state        what the server holds: home, keystore, chain connection, node client, jobs
jobs         background fetches and publishes, with progress the pages poll
errors       failures as pages a person can act on
views_*      the pages: market (market, dataset, buy), lab (licenses), owner (mine), node (node, network)
chart        the inline SVG of proofs and earnings per epoch
server       start and stop the app on a loopback address
"""
